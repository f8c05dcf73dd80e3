"""The seeded mutations of ``fixtures.mutations``: all harmful ones found, no harmless one reported.

For each sample archive (the newest of every project in ``fixtures/samples``
plus corpus files), every mutation that applies is written and compared with
the original. A harmful mutation must produce exactly the failures it
declares (kind and location, nothing else failing); a harmless one (attribute
order, indentation, record order, export timestamps, MetaDataVersion OID) must
produce no finding at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import mutations
from harness.compare import compare_documents
from tests.corpus import CORPUS

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "samples" / "2025-05-03"
ARCHIVES = sorted(SAMPLES.glob("*.REDCap.*[!6]")) + [
    CORPUS / "redcapr-simple-14.7.3.xml", CORPUS / "etl-repeating-forms-dag-9.5.3.xml",
    CORPUS / "pycap-long-15.2.1.xml",
]


def cases():
    out = []
    for archive in ARCHIVES:
        if not archive.is_file():
            out.append(pytest.param(archive, None, marks=pytest.mark.skip(reason=f"{archive} not found"),
                                    id=archive.name.split(".")[0]))
            continue
        for name in mutations.NAMES:
            out.append(pytest.param(archive, name, id=f"{archive.name.split('_')[0].split('.')[0]}-{name}"))
    return out


@pytest.fixture(scope="module")
def originals():
    """Each archive's mutations, built once per module (they read the archive)."""
    cache: dict[Path, dict[str, object]] = {}

    def get(archive: Path):
        if archive not in cache:
            cache[archive] = {m.name: m for m in mutations.all_mutations(archive)}
        return cache[archive]

    return get


@pytest.mark.parametrize("archive, name", cases())
def test_a_seeded_mutation_is_reported_exactly_as_declared(archive, name, originals):
    mutation = originals(archive).get(name)
    if mutation is None:
        pytest.skip(f"{name} does not apply to {archive.name}")

    result = compare_documents(archive, mutation.xml())

    if mutation.harmless:
        assert result.passed and result.findings == (), [str(d) for d in result.findings]
    else:
        failures = sorted((d.kind, d.location) for d in result.findings if d.severity == "failure")
        expected = sorted((e.kind, e.location) for e in mutation.expected)
        assert expected, f"{name} declares no finding"
        assert not result.passed
        assert failures == expected, [str(d) for d in result.findings]
