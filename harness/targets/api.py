"""The handful of REDCap API calls a restore drill makes, over real HTTP.

Shared by every target that talks to a REDCap (embedded sandbox or a real
instance): Export Version, Create Project (super token, ``odm=``), Export
Project Info, Export Project XML (streamed to a file) and Import Project Info.

Retries: only exports are retried (they are idempotent). Create Project is
never retried: a request that died after the server committed would create a
second copy of the project, and nobody would know the first one exists.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import requests

from harness import __version__
from harness.errors import TargetError
from harness.targets.base import ExportOptions
from harness.targets.multipart import MultipartBody
from harness.targets.secret import Secret, scrub

_TOKEN = re.compile(r"^[0-9A-Za-z]{32}$")
_TAIL_TOKEN = re.compile(r"([0-9A-Fa-f]{32})\s*$")
_ERROR_XML = re.compile(r"<error>(.*?)</error>", re.S)
_CHUNK = 1 << 20
_MAX_ERROR_BODY = 2000


class RedcapApi:
    """One REDCap API endpoint (``…/api/``) and, optionally, a super token.

    ``timeout`` is (connect, read) seconds; the read timeout must cover the
    server importing or exporting a large project in one request.
    """

    def __init__(self, url: str, *, super_token: Secret | None = None, verify: bool | str = True,
                 timeout: tuple[float, float] = (10.0, 600.0), export_retries: int = 2,
                 retry_wait: float = 2.0) -> None:
        if not url.endswith("/"):
            url += "/"
        if not url.endswith("/api/"):
            raise TargetError(f"the REDCap API URL must end with /api/ (got {redact_url(url)}); "
                              "use e.g. https://redcap.example.org/api/")
        self.url = url
        self.super_token = super_token
        self.timeout = timeout
        self.export_retries = export_retries
        self.retry_wait = retry_wait
        self.session = requests.Session()
        self.session.verify = verify
        self.session.headers["User-Agent"] = f"redcap-drill/{__version__}"

    def close(self) -> None:
        self.session.close()

    # -- calls ---------------------------------------------------------------------------
    def version(self) -> str:
        token = self._require_super()
        response = self._post("Export Version", {"token": token.reveal(), "content": "version"}, secrets=(token,))
        return response.text.strip()

    def create_project(self, odm_path: str | os.PathLike[str], *, title: str, purpose: str = "0",
                       purpose_other: str = "", notes: str = "") -> Secret:
        """Create a project from the XML file at ``odm_path``; returns the new project's token."""
        token = self._require_super()
        data = json.dumps([{"project_title": title, "purpose": purpose, "purpose_other": purpose_other,
                            "project_notes": notes}])
        # Never is_longitudinal: REDCap derives it from the file, and sending 1 for a
        # classic file would turn it into a one-event longitudinal project.
        body = MultipartBody([("token", token.reveal()), ("content", "project"), ("format", "json"),
                              ("returnFormat", "json"), ("data", data)], "odm", odm_path)
        response = self._post("Create Project", data=body, headers={"Content-Type": body.content_type},
                              secrets=(token,))
        text = response.text.strip()
        if _TOKEN.match(text):
            return Secret(text)
        # PyCap's fixtures take the last 32 characters: some servers print notices first.
        match = _TAIL_TOKEN.search(text)
        if match:
            return Secret(match.group(1))
        raise TargetError(
            "Create Project answered HTTP 200 but not with a 32-character project token "
            f"({len(text)} characters); the target may not be REDCap, or a proxy rewrote the reply"
        )

    def project_info(self, token: Secret) -> dict[str, Any]:
        response = self._post("Export Project Info",
                              {"token": token.reveal(), "content": "project", "format": "json",
                               "returnFormat": "json"}, secrets=(token,), retries=self.export_retries)
        try:
            info = response.json()
        except ValueError:
            raise TargetError("Export Project Info did not return JSON; the target may not be REDCap") from None
        if not isinstance(info, dict):
            raise TargetError("Export Project Info returned JSON that is not an object; the target may not be REDCap")
        return info

    def rename_project(self, token: Secret, title: str) -> None:
        """Import Project Info with a new title (used to flag leftovers for deletion)."""
        self._post("Import Project Info", {"token": token.reveal(), "content": "project_settings",
                                           "format": "json", "returnFormat": "json",
                                           "data": json.dumps({"project_title": title})}, secrets=(token,))

    def export_project_xml(self, token: Secret, dest: Path, *, options: ExportOptions = ExportOptions()) -> int:
        """Stream ``content=project_xml`` into ``dest``; returns the byte count."""
        fields = {"token": token.reveal(), "content": "project_xml", "returnFormat": "json", **options.params()}
        attempt = 0
        while True:
            try:
                return self._download("Export Project XML", fields, dest, secrets=(token,))
            except _Retryable as exc:
                attempt += 1
                if attempt > self.export_retries:
                    raise TargetError(str(exc)) from None
                time.sleep(self.retry_wait * attempt)

    # -- transport -----------------------------------------------------------------------
    def _require_super(self) -> Secret:
        if self.super_token is None or not self.super_token:
            raise TargetError("this call needs a super API token and none was configured; "
                              "set REDCAP_DRILL_SUPER_TOKEN")
        return self.super_token

    def _post(self, what: str, fields: dict[str, str] | None = None, *, data: Any = None,
              headers: dict[str, str] | None = None, secrets: tuple[Secret | None, ...] = (),
              retries: int = 0) -> requests.Response:
        attempt = 0
        while True:
            try:
                response = self._send(what, data=fields if data is None else data, headers=headers,
                                      stream=False, secrets=secrets)
                self._check(what, response, secrets)
                return response
            except _Retryable as exc:
                attempt += 1
                if attempt > retries:
                    raise TargetError(str(exc)) from None
                time.sleep(self.retry_wait * attempt)

    def _send(self, what: str, *, data: Any, headers: dict[str, str] | None, stream: bool,
              secrets: tuple[Secret | None, ...]) -> requests.Response:
        try:
            return self.session.post(self.url, data=data, headers=headers, timeout=self.timeout, stream=stream)
        except requests.exceptions.SSLError as exc:
            raise TargetError(
                f"{what}: TLS verification of {redact_url(self.url)} failed ({_reason(exc, secrets)}); install the "
                "server's CA certificate and point REQUESTS_CA_BUNDLE at it — verification is never switched off"
            ) from None
        except requests.exceptions.ConnectTimeout:
            raise _Retryable(f"{what}: could not connect to {redact_url(self.url)} within {self.timeout[0]:g} s; "
                             "check the URL, the network and that the server is up") from None
        except requests.exceptions.ReadTimeout:
            raise _Retryable(f"{what}: {redact_url(self.url)} did not answer within {self.timeout[1]:g} s; "
                             "the server may still be working — raise the read timeout for very large projects") from None
        except requests.exceptions.ConnectionError as exc:
            raise _Retryable(f"{what}: the connection to {redact_url(self.url)} failed or was closed mid-request "
                             f"({_reason(exc, secrets)}); check that the target is up and not killed by a proxy "
                             "or memory limit") from None
        except OSError as exc:  # the upload file vanished or changed while it was sent
            raise TargetError(f"{what}: could not send the request ({_reason(exc, secrets)})") from None

    def _check(self, what: str, response: requests.Response, secrets: tuple[Secret | None, ...]) -> None:
        if response.status_code == 200:
            return
        message = _error_message(response, secrets)
        advice = _ADVICE.get(response.status_code, "see the message above")
        error = f"{what}: {redact_url(self.url)} answered HTTP {response.status_code}: {message}; {advice}"
        if response.status_code in (429, 502, 503, 504):
            raise _Retryable(error)
        raise TargetError(error)

    def _download(self, what: str, fields: dict[str, str], dest: Path, *,
                  secrets: tuple[Secret | None, ...]) -> int:
        response = self._send(what, data=fields, headers=None, stream=True, secrets=secrets)
        with response:
            self._check(what, response, secrets)
            written = 0
            try:
                with open(dest, "wb") as out:
                    for chunk in response.iter_content(_CHUNK):
                        out.write(chunk)
                        written += len(chunk)
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise _Retryable(f"{what}: the connection broke after {written} bytes ({_reason(exc, secrets)}); "
                                 "the target died or a proxy cut the download") from None
            except OSError as exc:
                raise TargetError(f"{what}: cannot write {dest}: {exc.strerror or exc}; check free disk space") from None
        return written


class _Retryable(Exception):
    """A failure worth another try for idempotent calls; becomes TargetError otherwise."""


_ADVICE = {
    400: "REDCap refused the request or the archive (its message says why)",
    401: "the token was rejected; check REDCAP_DRILL_SUPER_TOKEN",
    403: "the token lacks the right; Create Project needs a 64-character super token from an administrator",
    404: "check the URL: it must be the instance's /api/ endpoint",
    413: "the archive is larger than the server accepts; raise post_max_size/upload limits on the target",
    500: "the server failed; look at its error log",
    502: "a proxy in front of the target failed; try again later",
    503: "the target is unavailable; try again later",
    504: "a proxy gave up waiting; raise its timeout for large projects",
}


def _error_message(response: requests.Response, secrets: tuple[Secret | None, ...]) -> str:
    text = response.text[:_MAX_ERROR_BODY]
    message = text
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and "error" in parsed:
            message = str(parsed["error"])
    except ValueError:
        match = _ERROR_XML.search(text)
        if match:
            message = match.group(1)
        elif text.upper().startswith("ERROR:"):
            message = text[6:]
    message = " ".join(message.split()) or "(empty body)"
    return scrub(message, *secrets)


def _reason(exc: BaseException, secrets: tuple[Secret | None, ...]) -> str:
    # requests' text names the host and the low-level cause (reset, refused, aborted), never the body.
    text = str(exc) or type(exc).__name__
    return scrub(text[:300], *secrets)


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, for messages and reports."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
