"""Benchmark the sandbox: Create Project from a large XML, then export it again.

    python bench/sandbox.py                    # 20 000 records, ≈85 MB (the compare benchmark's archive)
    python bench/sandbox.py --records 2000     # quicker
    python bench/sandbox.py --fields-per-form 34   # ≈100 fields per record

Targets on a 2-core machine: import ≤ 30 s, export ≤ 20 s, server peak RSS
≤ 300 MB (a flat CSV record export is timed too, without a target). The server runs in its own process (``python -m harness.sandbox``)
so its peak RSS (``VmHWM``) is measured alone; the archive is generated with
``fixtures.generate`` into a cache folder in the temporary directory and
reused on the next run. Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baseline import ratio_lines  # noqa: E402  (bench/ is the script's folder)
from fixtures.generate import GeneratorConfig, build  # noqa: E402

TARGETS = {"import": 30.0, "export": 20.0, "rss": 300.0}


def archive(folder: Path, records: int, seed: int, fields_per_form: int) -> Path:
    suffix = f"-f{fields_per_form}" if fields_per_form else ""
    path = folder / f"a-{seed}-{records}{suffix}.xml"  # the same name bench/compare.py uses
    if not path.is_file():
        project = build(GeneratorConfig(seed=seed, records=records, forms=3, fields_per_form=fields_per_form))
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as out:
            project.write(out)
        tmp.rename(path)
    return path


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fields-per-form", type=int, default=0, help="pad each form to this many fields")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "redcap-drill-bench")
    parser.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.make_only:
        archive(args.dir, args.records, args.seed, args.fields_per_form)
        return 0
    # Generating in a child process keeps the generator's memory out of everything measured here.
    subprocess.run([sys.executable, __file__, "--make-only", "--records", str(args.records), "--seed",
                    str(args.seed), "--fields-per-form", str(args.fields_per_form), "--dir", str(args.dir)],
                   check=True)
    path = archive(args.dir, args.records, args.seed, args.fields_per_form)
    print(f"archive: {path.name}, {path.stat().st_size / 1e6:.1f} MB, {args.records} records")

    server = subprocess.Popen([sys.executable, "-m", "harness.sandbox", "--port", "0"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        printed = dict(server.stdout.readline().strip().partition("=")[::2] for _ in range(2))
        url, super_token = printed["url"], printed["super_token"]
        print(f"server: pid {server.pid}, RSS after start {peak_rss_mb(server.pid):.0f} MB")

        started = time.perf_counter()
        with open(path, "rb") as odm:
            r = requests.post(url, data={"token": super_token, "content": "project", "format": "json",
                                         "data": json.dumps([{"project_title": "Bench", "purpose": "0"}])},
                              files={"odm": (path.name, odm, "application/xml")}, timeout=3600)
        imported = time.perf_counter() - started
        if r.status_code != 200:
            print(f"import failed: HTTP {r.status_code}: {r.text[:500]}")
            return 1
        token = r.text
        rss_import = peak_rss_mb(server.pid)
        print(f"import:  {imported:6.1f} s  (target ≤ {TARGETS['import']:.0f} s)   peak RSS {rss_import:.0f} MB")

        out = args.dir / "sandbox-export.xml"
        started = time.perf_counter()
        with requests.post(url, data={"token": token, "content": "project_xml", "returnFormat": "json"},
                           stream=True, timeout=3600) as r, open(out, "wb") as fh:
            r.raise_for_status()
            for chunk in r.iter_content(1 << 20):
                fh.write(chunk)
        exported = time.perf_counter() - started
        subjects = out.read_bytes().count(b"<SubjectData ")

        started = time.perf_counter()
        rows = 0
        with requests.post(url, data={"token": token, "content": "record", "format": "csv"}, stream=True,
                           timeout=3600) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                rows += 1
        flat = time.perf_counter() - started
        rss = peak_rss_mb(server.pid)
        print(f"export:  {exported:6.1f} s  (target ≤ {TARGETS['export']:.0f} s)   "
              f"{out.stat().st_size / 1e6:.1f} MB, {subjects} records")
        print(f"records: {flat:6.1f} s  (flat CSV export, {rows} lines; no target)")
        print(f"server peak RSS: {rss:.0f} MB (target ≤ {TARGETS['rss']:.0f} MB)")
        for line in ratio_lines(path, {"import (Create Project)": imported, "export (project_xml)": exported}):
            print(line)
        ok = (imported <= TARGETS["import"] and exported <= TARGETS["export"] and rss <= TARGETS["rss"]
              and subjects == args.records)
        print("all targets met" if ok else "TARGET MISSED")
        return 0 if ok else 1
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    raise SystemExit(main())
