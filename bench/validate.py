"""Benchmark: `redcap-drill validate` against `xmllint --stream --schema` on the same content.

Not a test. It makes (or takes with ``--input``) a large REDCap project XML
archive, writes the same content again as PLAIN ODM 1.3.1 so that xmllint can
validate every element against CDISC's schema (``redcap:`` attributes and
elements dropped, classic FormData wrapped in StudyEventData, boolean code
lists as text, empty OIDs and names filled, uploaded files moved to their own
ItemGroupData), then runs

* ours:    ``python -m harness validate --profile redcap ARCHIVE`` (XSD + dialect + semantic
           checks + reading the model, in one streaming pass), and, for an
           apples-to-apples figure, ``--profile strict --no-semantic`` on the plain twin;
* xmllint: ``xmllint --stream --noout --schema ODM1-3-1.xsd PLAIN``

each as a child process, and prints wall time, peak RSS (``ru_maxrss`` of that
child, from ``os.wait4``) and the ratios. Targets: ours ≤ 1.5 × xmllint's time,
peak RSS ≤ 150 MB.

xmllint comes from Debian's ``libxml2-utils`` package (``apt-get install
libxml2-utils``); it uses the same libxml2 as lxml, so the comparison is of the
streaming overhead, not of two XSD engines.

The archive comes from ``fixtures.generate`` (every REDCap field type, values
that pass the semantic checks) when it is importable, else from the small
generator below; ``--generator`` chooses.

    python3 bench/validate.py                      # 20 000 records x 100 fields
    python3 bench/validate.py --size 1g            # about 1 GB
    python3 bench/validate.py --input backup.xml   # your own REDCap file (plain twin derived from it)

Generated files go to bench/out/ (git-ignored) and are reused when present.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"

ODM_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"{redcap_ns} '
    'ODMVersion="1.3.1" FileOID="000-00-0000" FileType="Snapshot" Description="Bench" '
    'AsOfDateTime="2025-03-14T09:26:53" CreationDateTime="2025-03-14T09:26:53" '
    'SourceSystem="REDCap" SourceSystemVersion="15.7.6">\n'
)

# A repeating mix of REDCap field kinds: (kind, validation, data type, value maker).
_KINDS = (
    ("text", "", "text", lambda r, i: f"Text {r}"),
    ("text", "int", "integer", lambda r, i: str((r * 7 + i) % 1000)),
    ("text", "date_ymd", "date", lambda r, i: f"20{10 + r % 14:02d}-{1 + i % 12:02d}-{1 + r % 28:02d}"),
    ("radio", "", "text", lambda r, i: str((r + i) % 3)),
    ("text", "float", "float", lambda r, i: f"{(r % 97) + i / 10:.1f}"),
    ("yesno", "", "boolean", lambda r, i: str((r + i) % 2)),
    ("textarea", "", "text", lambda r, i: f"Line {r}\nnext"),
    ("text", "email", "text", lambda r, i: f"p{r}@ex.org"),
    ("select", "", "text", lambda r, i: str(1 + (r * i) % 4)),
    ("text", "datetime_seconds_ymd", "datetime", lambda r, i: f"2024-0{1 + i % 9}-1{r % 10}T1{i % 10}:0{r % 6}:3{i % 6}"),
)
_CHOICES = {"radio": ("0", "1", "2"), "select": ("1", "2", "3", "4"), "yesno": ("1", "0")}


def _fields(n: int):
    out = [("record_id", "text", "", "text")]
    for i in range(1, n):
        kind, validation, data_type, _ = _KINDS[i % len(_KINDS)]
        out.append((f"f{i:03d}", kind, validation, data_type))
    return out


def write_archive(path: Path, records: int, fields: int, *, plain: bool) -> None:
    """Stream a REDCap-style (``plain=False``) or plain ODM 1.3.1 (``plain=True``) project file."""
    flds = _fields(fields)
    rc = "" if plain else ' xmlns:redcap="https://projectredcap.org"'
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        w = out.write
        w(ODM_HEAD.format(redcap_ns=rc))
        w('<Study OID="Project.Bench">\n<GlobalVariables>\n\t<StudyName>Bench</StudyName>\n'
          "\t<StudyDescription>Synthetic project for the validation benchmark.</StudyDescription>\n"
          "\t<ProtocolName>Bench</ProtocolName>\n")
        if not plain:
            w("\t<redcap:RecordAutonumberingEnabled>1</redcap:RecordAutonumberingEnabled>\n"
              "\t<redcap:Purpose>0</redcap:Purpose>\n\t<redcap:MissingDataCodes></redcap:MissingDataCodes>\n")
        w("</GlobalVariables>\n")
        w('<MetaDataVersion OID="Metadata.Bench_2025-03-14_0926" Name="Bench"'
          + ("" if plain else ' redcap:RecordIdField="record_id"') + ">\n")
        if plain:
            w('\t<Protocol><StudyEventRef StudyEventOID="Event.event_1_arm_1" OrderNumber="1" Mandatory="No"/></Protocol>\n'
              '\t<StudyEventDef OID="Event.event_1_arm_1" Name="Event 1" Type="Common" Repeating="No">\n'
              '\t\t<FormRef FormOID="Form.bench" OrderNumber="1" Mandatory="No"/>\n\t</StudyEventDef>\n')
        w('\t<FormDef OID="Form.bench" Name="Bench" Repeating="No"' + ("" if plain else ' redcap:FormName="bench"') + ">\n"
          '\t\t<ItemGroupRef ItemGroupOID="bench.record_id" Mandatory="No"/>\n\t</FormDef>\n')
        w('\t<ItemGroupDef OID="bench.record_id" Name="Bench" Repeating="No">\n')
        for name, *_ in flds:
            w(f'\t\t<ItemRef ItemOID="{name}" Mandatory="No"' + ("" if plain else f' redcap:Variable="{name}"') + "/>\n")
        w("\t</ItemGroupDef>\n")
        for name, kind, validation, data_type in flds:
            extra = "" if plain else f' redcap:Variable="{name}" redcap:FieldType="{kind}"' + (
                f' redcap:TextValidationType="{validation}"' if validation else "")
            w(f'\t<ItemDef OID="{name}" Name="{name}" DataType="{data_type}" Length="999"{extra}>\n'
              f"\t\t<Question><TranslatedText>Question {name}</TranslatedText></Question>\n")
            if kind in _CHOICES:
                w(f'\t\t<CodeListRef CodeListOID="{name}.choices"/>\n')
            w("\t</ItemDef>\n")
        for name, kind, _, _ in flds:
            if kind in _CHOICES:
                dtype = "boolean" if kind == "yesno" and not plain else "text"
                w(f'\t<CodeList OID="{name}.choices" Name="{name}" DataType="{dtype}"'
                  + ("" if plain else f' redcap:Variable="{name}"') + ">\n")
                for code in _CHOICES[kind]:
                    w(f'\t\t<CodeListItem CodedValue="{code}"><Decode><TranslatedText>Choice {code}'
                      "</TranslatedText></Decode></CodeListItem>\n")
                w("\t</CodeList>\n")
        w("</MetaDataVersion>\n</Study>\n")
        w('<ClinicalData StudyOID="Project.Bench" MetaDataVersionOID="Metadata.Bench_2025-03-14_0926">\n')
        makers = [_KINDS[i % len(_KINDS)][3] for i in range(len(flds))]
        for r in range(1, records + 1):
            parts = [f'\t<SubjectData SubjectKey="{r}"' + ("" if plain else ' redcap:RecordIdField="record_id"') + ">\n"]
            if plain:
                parts.append('\t\t<StudyEventData StudyEventOID="Event.event_1_arm_1" StudyEventRepeatKey="1">\n')
            parts.append('\t\t\t<FormData FormOID="Form.bench" FormRepeatKey="1">\n'
                         '\t\t\t\t<ItemGroupData ItemGroupOID="bench.record_id" ItemGroupRepeatKey="1">\n')
            parts.append(f'\t\t\t\t\t<ItemData ItemOID="record_id" Value="{r}"/>\n')
            for i in range(1, len(flds)):
                value = quoteattr(makers[i](r, i))
                if not plain:  # REDCap writes raw newlines inside attribute values (research §3.7)
                    value = value.replace("&#10;", "\n")
                parts.append(f'\t\t\t\t\t<ItemData ItemOID="{flds[i][0]}" Value={value}/>\n')
            parts.append("\t\t\t\t</ItemGroupData>\n\t\t\t</FormData>\n")
            if plain:
                parts.append("\t\t</StudyEventData>\n")
            parts.append("\t</SubjectData>\n")
            w("".join(parts))
        w("</ClinicalData>\n</ODM>")
    tmp.replace(path)


def write_fixture_archive(path: Path, records: int, fields: int) -> None:
    """A REDCap 15.7 export from the project's own generator (every field type)."""
    from fixtures.generate import GeneratorConfig, generate_file

    generate_file(path, GeneratorConfig(seed=1, records=records, forms=4, fields_per_form=max(1, fields // 4)))


def _writer(generator: str):
    if generator == "fixtures":
        return write_fixture_archive
    return lambda path, records, fields: write_archive(path, records, fields, plain=False)


def _record_bytes(generator: str, fields: int) -> int:
    write = _writer(generator)
    probe, head = OUT / ".probe.xml", OUT / ".probe0.xml"
    write(probe, 200, fields)
    write(head, 0, fields)
    size = (probe.stat().st_size - head.stat().st_size) // 200
    probe.unlink()
    head.unlink()
    return size


# -- the plain ODM 1.3.1 twin of any REDCap archive -------------------------------------------------------
_ODM = "{http://www.cdisc.org/ns/odm/v1.3}"
_REDCAP = "{https://projectredcap.org}"
_DECLARATIONS = (b' xmlns="http://www.cdisc.org/ns/odm/v1.3"', b' xmlns:redcap="https://projectredcap.org"',
                 b' xmlns:ds="http://www.w3.org/2000/09/xmldsig#"',
                 b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')


def _to_plain(el) -> None:
    """Edit one streamed block in place into plain ODM 1.3.1 (see the module docstring)."""
    from lxml import etree

    for node in list(el.iter(_REDCAP + "*")):
        node.getparent().remove(node)
    for node in el.iter():
        for key in [k for k in node.attrib if k.startswith(_REDCAP)]:
            del node.attrib[key]
    for node in el.iter(_ODM + "CodeList"):
        if node.get("DataType") == "boolean":
            node.set("DataType", "text")
    for node in el.iter(_ODM + "ItemGroupDef"):
        if not node.get("Name"):
            node.set("Name", node.get("OID"))
    for node in list(el.iter(_ODM + "ItemGroupData")):
        if not node.get("ItemGroupOID"):
            node.set("ItemGroupOID", "unnamed")
        files = node.findall(_ODM + "ItemDataBase64Binary")
        if files and node.find(_ODM + "ItemData") is not None:
            twin = etree.Element(_ODM + "ItemGroupData", attrib=dict(node.attrib))
            twin.extend(files)
            node.addnext(twin)
    if el.tag == _ODM + "SubjectData":
        forms = el.findall(_ODM + "FormData")
        if forms:  # REDCap's classic layout: give the forms their one event
            event = etree.Element(_ODM + "StudyEventData", StudyEventOID="Event.event_1_arm_1",
                                  StudyEventRepeatKey="1")
            forms[0].addprevious(event)
            event.extend(forms)


def _serialize(el) -> bytes:
    from lxml import etree

    data = etree.tostring(el)
    end = data.index(b">")
    tag = data[:end]
    for declaration in _DECLARATIONS:  # already declared on the root we write
        tag = tag.replace(declaration, b"")
    return tag + data[end:] + b"\n"


def plain_twin(source: Path, target: Path) -> None:
    """Stream ``source`` (any REDCap archive) into ``target`` as plain ODM 1.3.1."""
    sys.path.insert(0, str(ROOT))
    from harness.archive import open_xml
    from harness.odm.stream import iter_blocks

    tmp = target.with_suffix(".part")
    with open_xml(source) as fh, open(tmp, "wb") as out:
        in_clinical = False
        for block in iter_blocks(fh, name=source.name):
            el = block.element
            if block.kind == "odm":
                attrs = "".join(f" {k}={quoteattr(v)}" for k, v in el.attrib.items() if not k.startswith("{"))
                out.write(b'<?xml version="1.0" encoding="UTF-8" ?>\n<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" '
                          b'xmlns:ds="http://www.w3.org/2000/09/xmldsig#"' + attrs.encode() + b">\n")
            elif block.kind == "clinical":
                attrs = "".join(f" {k}={quoteattr(v)}" for k, v in el.attrib.items() if not k.startswith("{"))
                out.write(f"<ClinicalData{attrs}>\n".encode())
                in_clinical = True
            elif block.kind in ("study", "subject") or not el.tag.startswith(_REDCAP):
                if block.kind == "study" and in_clinical:
                    out.write(b"</ClinicalData>\n")
                    in_clinical = False
                _to_plain(el)
                out.write(_serialize(el))
        out.write(b"</ClinicalData>\n</ODM>" if in_clinical else b"</ODM>")
    tmp.replace(target)


def parse_size(text: str) -> int:
    text = text.strip().lower()
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    if text[-1:] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Wall time and peak RSS of one child process.

    Peak RSS comes from GNU time (``/usr/bin/time -f %M``) when it is there: the
    ``ru_maxrss`` that ``wait4`` reports for a direct child includes this
    (bigger) Python process's own high-water mark, which Linux carries across
    vfork+exec. Without GNU time that biased figure is printed, marked so.
    """
    gnu_time = Path("/usr/bin/time").exists()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        full = (["/usr/bin/time", "-o", report.name, "-f", "%M"] if gnu_time else []) + cmd
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out, err = proc.stdout.read(), proc.stderr.read()  # drain first so a chatty child cannot block
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        peak_kib = int(report.read().split()[-1]) if gnu_time else usage.ru_maxrss
    return {
        "cmd": " ".join(cmd),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "rss_source": "GNU time %M" if gnu_time else "wait4 ru_maxrss (includes the parent's high-water mark)",
        "exit": code,
        "stdout_tail": out.decode(errors="replace")[-400:],
        "stderr_tail": err.decode(errors="replace")[-400:],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default=None, help="target archive size, e.g. 87m or 1g (default: 20 000 records)")
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--fields", type=int, default=100)
    ap.add_argument("--input", type=Path, help="validate this archive instead of a generated one")
    ap.add_argument("--generator", choices=("fixtures", "own"), default=None,
                    help="which generator makes the archive (default: fixtures.generate when importable)")
    ap.add_argument("--odm-schema", type=Path, default=os.environ.get("REDCAP_DRILL_ODM_SCHEMA"),
                    help="folder with CDISC's ODM 1.3.1 XSD (default: $REDCAP_DRILL_ODM_SCHEMA, then ../shared)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run each command N times and keep the fastest (damps noise from other jobs)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)

    schema_dir = args.odm_schema or ROOT.parent / "shared" / "schemas" / "odm_schema"
    xsd = Path(schema_dir) / "cdisc-odm-1.3.1" / "ODM1-3-1.xsd"
    if not xsd.is_file():
        print(f"bench: ODM schema not found at {xsd}; pass --odm-schema DIR", file=sys.stderr)
        return 2
    if not shutil.which("xmllint"):
        print("bench: xmllint not found; install Debian's libxml2-utils", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    generator = args.generator
    if generator is None:
        try:
            sys.path.insert(0, str(ROOT))
            import fixtures.generate  # noqa: F401
            generator = "fixtures"
        except ImportError:
            generator = "own"
    records = args.records
    if args.size:
        records = max(1, parse_size(args.size) // _record_bytes(generator, args.fields))
    tag = f"{generator}-{records}x{args.fields}"
    redcap_file = args.input or OUT / f"bench-{tag}.xml"
    plain_file = OUT / f"{redcap_file.name.split('.')[0]}-plain.xml"
    if not redcap_file.exists():
        print(f"bench: writing {redcap_file.name} ({generator} generator) …", file=sys.stderr)
        _writer(generator)(redcap_file, records, args.fields)
    if not plain_file.exists() or plain_file.stat().st_mtime < redcap_file.stat().st_mtime:
        print(f"bench: writing its plain ODM 1.3.1 twin {plain_file.name} …", file=sys.stderr)
        plain_twin(redcap_file, plain_file)

    env = dict(os.environ, REDCAP_DRILL_ODM_SCHEMA=str(schema_dir), PYTHONPATH=str(ROOT))
    ours = [sys.executable, "-m", "harness", "validate", "--json", "--max-messages", "5"]
    commands = {
        "xmllint": (["xmllint", "--stream", "--noout", "--schema", str(xsd), str(plain_file)], None),
        "ours_redcap": (ours + ["--profile", "redcap", str(redcap_file)], env),
        "ours_strict_plain": (ours + ["--profile", "strict", "--no-semantic", str(plain_file)], env),
    }
    runs = {}
    for _ in range(max(1, args.repeat)):  # interleaved, so a busy spell hurts every command alike
        for name, (cmd, cmd_env) in commands.items():
            run = measure(cmd, cmd_env)
            if name not in runs or run["seconds"] < runs[name]["seconds"]:
                runs[name] = run
    base = runs["xmllint"]
    figures = {
        "generator": generator if not args.input else f"input {args.input}",
        "records": records,
        "fields": args.fields,
        "archive_mb": round(redcap_file.stat().st_size / 2**20, 1),
        "plain_mb": round(plain_file.stat().st_size / 2**20, 1),
        "runs": runs,
        "time_ratio_redcap": round(runs["ours_redcap"]["seconds"] / base["seconds"], 2),
        "time_ratio_strict_plain": round(runs["ours_strict_plain"]["seconds"] / base["seconds"], 2),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"archive: {figures['archive_mb']} MB ({figures['generator']}, {records} records x ~{args.fields} fields); "
              f"plain twin {figures['plain_mb']} MB")
        for name, run in runs.items():
            print(f"  {name:<18} {run['seconds']:>8.2f} s  peak RSS {run['peak_rss_mb']:>7.1f} MB  exit {run['exit']}")
        print(f"  time ratio vs xmllint: redcap {figures['time_ratio_redcap']}x, "
              f"strict on plain twin {figures['time_ratio_strict_plain']}x (target <= 1.5x; RSS target <= 150 MB)")
        for name, run in runs.items():
            if run["exit"] not in (0, 1) or (name == "xmllint" and run["exit"] != 0):
                print(f"  ! {name} exited {run['exit']}: {run['stderr_tail'].strip()[-300:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
