"""On real REDCap exports, the comparator reports nothing that is not there.

Every corpus file compared with itself passes with no warnings. A copy whose
every always-different item (§6.1: export timestamps, MetaDataVersion OID
suffix, attachment and report ids) was changed still passes with no
warnings: those differences are masked, and the rules that masked them are
listed. A copy re-serialised by another XML library (attribute quoting,
CDATA, whitespace between elements) is the same document.
"""

from __future__ import annotations

import re

import pytest
from lxml import etree

from harness.compare import compare_documents, compare_paths
from harness.odm.prepass import PrepassReader
from tests.corpus import corpus_params

O = "{http://www.cdisc.org/ns/odm/v1.3}"
R = "{https://projectredcap.org}"


def parse(path) -> etree._ElementTree:
    with open(path, "rb") as fh:
        return etree.parse(PrepassReader(fh), etree.XMLParser(resolve_entities=False, huge_tree=True))


def serialise(tree: etree._ElementTree) -> bytes:
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def restamped(path) -> bytes:
    """The same export as if taken at another time: every §6.1 item changed."""
    tree = parse(path)
    root = tree.getroot()
    for attr in ("AsOfDateTime", "CreationDateTime"):
        if root.get(attr) is not None:
            root.set(attr, "2031-12-24T23:59:58")
    for el in root.iter(O + "MetaDataVersion", O + "ClinicalData"):
        attr = "OID" if el.tag == O + "MetaDataVersion" else "MetaDataVersionOID"
        value = el.get(attr)
        if value:
            el.set(attr, re.sub(r"_\d{4}-\d{2}-\d{2}_\d{4}$", "", value) + "_2031-12-24_2359")
    new_ids = {}
    for att in root.iter(R + "OdmAttachment"):
        new_ids[att.get("ID")] = f"{len(new_ids):040x}"
        att.set("ID", new_ids[att.get("ID")])
    for el in root.iter():
        for key, value in el.attrib.items():
            if value in new_ids:
                el.set(key, new_ids[value])
    for report in root.iter(R + "Reports"):
        report.set("ID", "f" * 40)
        report.set("hash", "NEWHASH123456789")
    return serialise(tree)


@pytest.mark.parametrize("path", corpus_params())
def test_every_export_compared_with_itself_passes_without_warnings(path):
    result = compare_paths(path, path)

    assert result.passed, [str(d) for d in result.findings]
    assert result.warnings == 0
    assert result.findings == ()
    assert result.known_fired == {}
    assert result.records.values_differing == 0


@pytest.mark.parametrize("path", corpus_params())
def test_a_copy_re_serialised_by_lxml_is_the_same_document(path):
    result = compare_documents(path, serialise(parse(path)))

    assert result.passed and result.warnings == 0, [str(d) for d in result.findings]


@pytest.mark.parametrize("path", corpus_params())
def test_a_copy_exported_at_another_time_passes_with_the_changes_masked(path):
    result = compare_documents(path, restamped(path))

    assert result.passed, [str(d) for d in result.findings]
    assert result.warnings == 0
    assert result.findings == ()
    assert result.known_fired["export-timestamp"] == 2
    assert result.known_fired["metadata-version-timestamp"] == 1
    masked = {d.location: d for d in result.structure}
    assert masked["ODM › AsOfDateTime"].severity == "masked"
    assert masked["ODM › AsOfDateTime"].b == "2031-12-24T23:59:58"
    if b"<redcap:Reports " in path.read_bytes():
        assert result.known_fired["vendor-row-id"] >= 1
        assert result.known_fired["share-links"] >= 1


def test_the_records_of_a_real_export_are_counted_and_all_compared():
    path = next((p.values[0] for p in corpus_params() if p.values[0] is not None
                 and p.values[0].name.startswith("etl-repeating-events")), None)
    if path is None:
        pytest.skip("corpus file etl-repeating-events-8.1.10.xml not available")

    result = compare_paths(path, path)

    assert result.records.a_count == result.records.b_count == 100
    assert result.records.values_compared > 9000
    assert result.records.reread == 0
