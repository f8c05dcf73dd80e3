"""The REDCap API client over real HTTP: streamed Create Project, errors that say what to do, no token leaks.

`StubRedcap` is a tiny real HTTP server (not a mock of requests): it answers
the few calls the client makes and can be told to misbehave the way a real
server does (die mid-request, answer 400 with REDCap's error shape).
"""

from __future__ import annotations

import json
import threading
from email import message_from_bytes
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from harness.errors import TargetError
from harness.targets import ExportOptions, Secret
from harness.targets.api import RedcapApi

SUPER = "C" * 64
PROJECT = "D" * 32


class StubRedcap:
    """A real HTTP server on localhost speaking just enough of REDCap's API.

    ``behaviour`` picks how Create Project ends: "ok" answers a token,
    "drop" reads the whole upload and closes the socket without answering
    (a server killed mid-request), "error" answers 400 like REDCap. With
    ``echo`` the export returns exactly what was restored (a perfect REDCap),
    which lets plugin tests exercise a whole drill without the sandbox.
    """

    def __init__(self, behaviour: str = "ok", *, echo: bool = False) -> None:
        self.behaviour = behaviour
        self.echo = echo
        self.projects: dict[str, bytes] = {}
        self.requests: list[dict] = []
        self.uploads: list[dict[str, bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                fields = _form(self.headers.get("Content-Type", ""), body)
                stub.requests.append({"headers": dict(self.headers), "fields": fields, "length": length})
                content = fields.get("content", b"").decode()
                if content == "version":
                    return self._answer(200, b"15.7.6")
                if content == "project" and "data" in fields:
                    stub.uploads.append(fields)
                    token = PROJECT if len(stub.uploads) == 1 else f"{len(stub.uploads):032X}"
                    stub.projects[token] = fields["odm"]
                    if stub.behaviour == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if stub.behaviour == "error":
                        msg = json.dumps({"error": "The XML file could not be processed " + fields["token"].decode()})
                        return self._answer(400, msg.encode())
                    return self._answer(200, token.encode())
                if content == "project":
                    return self._answer(200, json.dumps({"project_id": 12, "project_title": "x"}).encode())
                if content == "project_xml":
                    # An "echo REDCap": what was restored comes back unchanged.
                    stored = stub.projects.get(fields["token"].decode())
                    if stored is not None and stub.echo:
                        return self._answer(200, stored)
                    return self._answer(200, b"<?xml version=\"1.0\"?>\n<ODM>" + b" " * 3_000_000 + b"</ODM>")
                return self._answer(400, b'{"error":"The value of the parameter \\"content\\" is not valid"}')

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> StubRedcap:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _form(content_type: str, body: bytes) -> dict[str, bytes]:
    if content_type.startswith("multipart/form-data"):
        msg = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=HTTP)
        return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                for part in msg.iter_parts()}
    return {k: v[0].encode() for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


@pytest.fixture
def archive(tmp_path) -> Path:
    path = tmp_path / "big.xml"
    # 1.6 MB, bigger than one upload chunk, with bytes multipart must carry verbatim.
    path.write_bytes(b'<?xml version="1.0" encoding="UTF-8" ?>\n<ODM>' + b"\r\n--x\x00\xff" * 200_000 + b"</ODM>")
    return path


def test_create_project_streams_the_archive_as_the_odm_form_field(archive):
    with StubRedcap() as stub:
        api = RedcapApi(stub.url, super_token=Secret(SUPER))
        token = api.create_project(archive, title="Drill & <Co>", purpose="2", purpose_other="1,3", notes="n")
    assert token.reveal() == PROJECT
    fields = stub.uploads[0]
    assert fields["odm"] == archive.read_bytes()
    assert json.loads(fields["data"]) == [{"project_title": "Drill & <Co>", "purpose": "2", "purpose_other": "1,3",
                                           "project_notes": "n"}]
    assert fields["token"].decode() == SUPER and fields["content"] == b"project"
    create = next(r for r in stub.requests if "data" in r["fields"])
    assert int(create["headers"]["Content-Length"]) == create["length"]  # a length, not a chunked upload
    assert "is_longitudinal" not in fields["data"].decode()


def test_a_server_that_dies_mid_create_project_is_a_clear_target_error(archive):
    with StubRedcap("drop") as stub:
        api = RedcapApi(stub.url, super_token=Secret(SUPER))
        with pytest.raises(TargetError) as failure:
            api.create_project(archive, title="t")
    message = str(failure.value)
    assert "Create Project" in message and "closed mid-request" in message
    assert len(stub.uploads) == 1  # never retried: a retry could create a second project
    assert SUPER not in message


def test_redcaps_error_body_is_reported_without_the_token_it_echoes(archive):
    with StubRedcap("error") as stub:
        api = RedcapApi(stub.url, super_token=Secret(SUPER))
        with pytest.raises(TargetError) as failure:
            api.create_project(archive, title="t")
    message = str(failure.value)
    assert "HTTP 400" in message and "could not be processed" in message
    assert SUPER not in message and "********" in message


def test_export_streams_the_project_xml_to_a_file(tmp_path):
    with StubRedcap() as stub:
        api = RedcapApi(stub.url, super_token=Secret(SUPER))
        written = api.export_project_xml(Secret(PROJECT), tmp_path / "b.xml",
                                         options=ExportOptions(metadata_only=True, files=True))
    assert written == (tmp_path / "b.xml").stat().st_size > 3_000_000
    fields = stub.requests[-1]["fields"]
    assert fields["returnMetadataOnly"] == b"true" and fields["exportFiles"] == b"true"
    assert fields["exportSurveyFields"] == b"false" and fields["exportDataAccessGroups"] == b"false"


def test_an_unreachable_target_names_the_url_and_what_to_check():
    api = RedcapApi("http://127.0.0.1:9/api/", super_token=Secret(SUPER), timeout=(1, 1))
    with pytest.raises(TargetError, match=r"127\.0\.0\.1:9/api/.*check that the target is up"):
        api.version()
