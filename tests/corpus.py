"""Where the shared conformance corpus lives; tests skip with a reason without it."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
EXAMPLE = SHARED / "research" / "example-longitudinal.xml"


def corpus_files() -> list[Path]:
    files = sorted(CORPUS.glob("*.xml")) if CORPUS.is_dir() else []
    if EXAMPLE.is_file():
        files.append(EXAMPLE)
    return files


def corpus_params():
    """pytest params over every real export, or one skipped param saying why."""
    files = corpus_files()
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"shared corpus not found at {CORPUS}"))]
    return [pytest.param(p, id=p.stem) for p in files]


def manifest() -> dict[str, dict[str, str]]:
    path = CORPUS / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    lines = path.read_text().splitlines()
    head = lines[0].split("\t")
    return {row.split("\t")[0]: dict(zip(head, row.split("\t"))) for row in lines[1:] if row}
