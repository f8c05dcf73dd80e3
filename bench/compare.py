"""Benchmark the record comparison against the cost of just parsing both files.

    python bench/compare.py                 # ≈87 MB generated archive vs a mutated copy
    python bench/compare.py --records 2000  # quicker

Target: the record diff takes at most 1.5× the time needed to parse the two
files (stream every record of A and of B through the reader). Prints the
sizes, both times (CPU seconds of this process, so other load on the machine
does not tilt the ratio; the comparison's figure includes reading metadata and
comparing it, which is a rounding error), the ratio, what was found, and the
peak memory.

The archives are generated with ``fixtures.generate`` (deterministic) into a
cache folder in the temporary directory and reused on the next run.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baseline import xmllint_stream_seconds  # noqa: E402  (bench/ is the script's folder)
from fixtures.generate import GeneratorConfig, build  # noqa: E402
from harness.compare import compare_paths  # noqa: E402
from harness.odm.model import RecordRow  # noqa: E402
from harness.odm.reader import OdmDocument  # noqa: E402
from harness.odm.writer import write_project  # noqa: E402


def mutate(records, total: int):
    """The records of B: one record lost, one value changed, one box unticked, one calc recomputed."""
    lost, changed, unticked, recomputed = str(total // 3), str(total // 2), str(total - 1), "7"
    for r in records:
        if r.record_id == lost:
            continue
        if r.record_id in (changed, unticked, recomputed):
            rows = []
            for row in r.rows:
                values = dict(row.values)
                if r.record_id == changed and "height" in values:
                    values["height"] = str(float(values["height"]) + 1)
                if r.record_id == unticked:
                    ticked = [k for k, v in values.items() if "___" in k and v == "1"]
                    if ticked:
                        values[ticked[0]] = "0"
                if r.record_id == recomputed and "bmi" in values:
                    values["bmi"] = "0"
                rows.append(RecordRow(row.event, row.repeat_instrument, row.instance, values, dict(row.files)))
            r = replace(r, rows=tuple(rows))
        yield r


def reorder(records, block: int = 500):
    """Records reversed within blocks: nearly every record arrives out of order."""
    chunk = []
    for r in records:
        chunk.append(r)
        if len(chunk) == block:
            yield from reversed(chunk)
            chunk = []
    yield from reversed(chunk)


def make(folder: Path, records: int, seed: int) -> tuple[Path, Path, Path]:
    """A, B (mutated, same order) and B' (mutated, out of order); made once, then reused."""
    config = GeneratorConfig(seed=seed, records=records, forms=3)
    a = folder / f"a-{seed}-{records}.xml"
    b = folder / f"b-{seed}-{records}.xml"
    shuffled = folder / f"b-shuffled-{seed}-{records}.xml"
    if not (a.is_file() and b.is_file() and shuffled.is_file()):
        project = build(config)
        with open(a, "wb") as out:
            project.write(out)
        for path, order in ((b, iter), (shuffled, reorder)):
            with open(path, "wb") as out:
                write_project(out, project.meta, order(mutate(project.records(), records)),
                              options=project.options, now="2025-05-02 03:04:05", version=config.version)
    return a, b, shuffled


def parse_seconds(path: Path) -> float:
    """CPU seconds to stream every record of ``path`` through the reader."""
    started = time.process_time()
    with open(path, "rb") as fh:
        doc = OdmDocument(fh, name=path.name)
        for _ in doc.records():
            pass
    return time.process_time() - started


def compare_seconds(a: Path, b: Path):
    """(CPU seconds, wall seconds, result) of one whole comparison."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = compare_paths(a, b)
    return time.process_time() - cpu, time.perf_counter() - wall, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000, help="records (20 000 ≈ 87 MB)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "redcap-drill-bench")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best counts")
    parser.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)

    if args.make_only:
        make(args.dir, args.records, args.seed)
        return 0
    started = time.perf_counter()
    # Generating in a child process keeps its memory out of the peak RSS measured here.
    subprocess.run([sys.executable, __file__, "--make-only", "--records", str(args.records),
                    "--seed", str(args.seed), "--dir", str(args.dir)], check=True)
    a, b, shuffled = make(args.dir, args.records, args.seed)
    print(f"archives: A {a.stat().st_size / 1e6:.1f} MB, B {b.stat().st_size / 1e6:.1f} MB "
          f"({time.perf_counter() - started:.1f} s to make or find)")

    # CPU time, not wall time: other work on the machine then does not tilt the
    # ratio. Each run measures parse and compare back to back; the best ratio counts.
    worst = 0.0
    for label, other in (("B in REDCap's order", b), ("B out of order", shuffled)):
        runs = []
        for _ in range(args.repeat):
            parse = parse_seconds(a) + parse_seconds(other)
            cpu, wall, result = compare_seconds(a, other)
            runs.append((cpu / parse, parse, cpu, wall, result))
        ratio, parse, cpu, wall, result = min(runs, key=lambda r: r[0])
        worst = max(worst, ratio)
        rec = result.records
        print(f"\n{label} (best of {args.repeat}, CPU seconds):")
        print(f"  parse both files:  {parse:.2f} s")
        print(f"  whole comparison:  {cpu:.2f} s   ratio {ratio:.2f}× (target ≤ 1.5×); wall {wall:.2f} s")
        print(f"  records A {rec.a_count}, B {rec.b_count}; missing {rec.missing_count}, "
              f"changed {rec.changed_count}, re-read {rec.reread}; values compared {rec.values_compared}")
        for d in result.findings:
            print(f"    {d.severity} {d.kind} {d.location}" + (f" [{d.rule}]" if d.rule else ""))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the comparisons: {rss:.0f} MB")
    # The comparison reads both files, so its yardstick is xmllint reading both.
    base = [xmllint_stream_seconds(p) for p in (a, b)]
    if None not in base:
        print(f"xmllint --stream on A and B: {sum(base):.2f} s; the comparison (wall, last run) = "
              f"{wall / sum(base):.1f}× xmllint --stream")
    return 0 if worst <= 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
