"""Seeded changes to real exports are found, at the right place; harmless ones are not.

Each mutation edits one real corpus export the way a faulty restore could
(a record lost, a value changed, a checkbox unticked, a repeat instance
dropped, a choice label or branching logic changed, an event-form mapping
removed) and says which finding it must cause: a kind and a location. The
comparator must report exactly that, and nothing else that fails. Harmless
edits (attribute order, indentation, record order, export timestamps,
MetaDataVersion OID) must cause no finding at all.
"""

from __future__ import annotations

import io

import pytest
from lxml import etree

from harness.compare import compare_documents
from harness.odm.model import CLASSIC_EVENT, ProjectMetadata
from harness.odm.prepass import PrepassReader
from harness.odm.reader import OdmDocument
from tests.corpus import corpus_params

O = "{http://www.cdisc.org/ns/odm/v1.3}"
R = "{https://projectredcap.org}"
SEP = " › "


class NotApplicable(Exception):
    """The export has nothing this mutation can change (e.g. no checkboxes)."""


def load(path) -> tuple[etree._ElementTree, ProjectMetadata]:
    with open(path, "rb") as fh:
        tree = etree.parse(PrepassReader(fh), etree.XMLParser(resolve_entities=False, huge_tree=True))
    return tree, OdmDocument(io.BytesIO(path.read_bytes())).metadata


def where(meta: ProjectMetadata, item: etree._Element, with_field: bool = True) -> str:
    """The comparator's location of one ItemData, worked out from the XML."""
    form_data = item.getparent().getparent()
    subject = form_data.getparent()
    event, event_key = CLASSIC_EVENT, "1"
    if subject.tag == O + "StudyEventData":
        event = subject.get(R + "UniqueEventName") or subject.get("StudyEventOID").removeprefix("Event.")
        event_key = subject.get("StudyEventRepeatKey", "1")
        subject = subject.getparent()
    form = form_data.get("FormOID").removeprefix("Form.")
    parts = [f"record {subject.get('SubjectKey')}"]
    if meta.events:
        parts.append(f"event {event} #{event_key}" if meta.is_repeating_event(event) else f"event {event}")
    if meta.is_repeating_form(event, form):
        parts.append(f"{form} #{form_data.get('FormRepeatKey', '1')}")
    if with_field:
        parts.append(f"field {item.get('ItemOID')}")
    return SEP.join(parts)


def plain_items(tree, meta, field_type=None):
    """ItemData of ordinary fields (not calc, file, pseudo-field or the record id)."""
    for item in tree.iter(O + "ItemData"):
        f = meta.item_oids.get(item.get("ItemOID"))
        if f is None or f.name == meta.record_id_field or f.field_type in ("calc", "file"):
            continue
        if "@CALC" in f.field_annotation.upper():
            continue
        if field_type is None and f.field_type == "checkbox":
            continue
        if field_type is not None and f.field_type != field_type:
            continue
        yield item, f


# -- harmful mutations ----------------------------------------------------------
def drop_record(tree, meta):
    subjects = list(tree.iter(O + "SubjectData"))
    if not subjects:
        raise NotApplicable("no records")
    victim = subjects[len(subjects) // 2]
    victim.getparent().remove(victim)
    return [("record_missing", f"record {victim.get('SubjectKey')}")]


def change_value(tree, meta):
    for item, _ in plain_items(tree, meta):
        if item.get("Value"):
            item.set("Value", item.get("Value") + " (changed)")
            return [("value_changed", where(meta, item))]
    raise NotApplicable("no ordinary value")


def untick_checkbox(tree, meta):
    for item, _ in plain_items(tree, meta, field_type="checkbox"):
        if item.get("Value") == "1":
            item.set("Value", "0")
            return [("value_changed", where(meta, item))]
    raise NotApplicable("no ticked checkbox")


def drop_repeat_instance(tree, meta):
    for form_data in tree.iter(O + "FormData"):
        parent = form_data.getparent()
        event = parent.get(R + "UniqueEventName", CLASSIC_EVENT) if parent.tag == O + "StudyEventData" else CLASSIC_EVENT
        form = form_data.get("FormOID").removeprefix("Form.")
        if form_data.get("FormRepeatKey") != "2" or not meta.is_repeating_form(event, form):
            continue
        items = [i for i in form_data.iter(O + "ItemData") if (i, meta.item_oids.get(i.get("ItemOID"))) and
                 meta.item_oids.get(i.get("ItemOID")) is not None and
                 meta.item_oids[i.get("ItemOID")].field_type != "calc"]
        if not items:
            continue
        expected = where(meta, items[0], with_field=False)
        parent.remove(form_data)
        return [("row_missing", expected)]
    raise NotApplicable("no second instance of a repeating instrument")


def drop_repeating_event_instance(tree, meta):
    for event_data in tree.iter(O + "StudyEventData"):
        event = event_data.get(R + "UniqueEventName")
        if event_data.get("StudyEventRepeatKey") == "2" and meta.is_repeating_event(event):
            items = list(event_data.iter(O + "ItemData"))
            if not items:
                continue
            expected = where(meta, items[0], with_field=False)
            event_data.getparent().remove(event_data)
            return [("row_missing", expected)]
    raise NotApplicable("no second instance of a repeating event")


def change_choice_label(tree, meta):
    for f in meta.fields:
        if f.field_type in ("radio", "select") and not f.is_form_status and f.choices:
            code_list = next(cl for cl in tree.iter(O + "CodeList") if cl.get("OID") == f"{f.name}.choices")
            first = code_list.find(f"{O}CodeListItem")
            first.find(f"{O}Decode/{O}TranslatedText").text = "A label nobody chose"
            location = SEP.join((f"form {f.form}", f"field {f.name}", f"choice {first.get('CodedValue')}", "label"))
            return [("codelist_changed", location)]
    raise NotApplicable("no radio or dropdown field")


def change_branching_logic(tree, meta):
    for item_def in tree.iter(O + "ItemDef"):
        f = meta.field_map.get(item_def.get(R + "Variable", ""))
        if f is not None and f.name != meta.record_id_field and not f.is_form_status:
            item_def.set(R + "BranchingLogic", f"{f.branching_logic} or [{meta.record_id_field}] = '42'")
            return [("metadata_changed", SEP.join((f"form {f.form}", f"field {f.name}", "branching_logic")))]
    raise NotApplicable("no field")


def drop_event_form_mapping(tree, meta):
    for event_def in tree.iter(O + "StudyEventDef"):
        refs = event_def.findall(O + "FormRef")
        if refs:
            form = refs[-1].get(R + "FormName") or refs[-1].get("FormOID").removeprefix("Form.")
            event_def.remove(refs[-1])
            event = event_def.get(R + "UniqueEventName")
            return [("mapping_changed", SEP.join((f"event {event}", f"form {form}")))]
    raise NotApplicable("not longitudinal")


HARMFUL = [drop_record, change_value, untick_checkbox, drop_repeat_instance, drop_repeating_event_instance,
           change_choice_label, change_branching_logic, drop_event_form_mapping]


# -- harmless mutations -----------------------------------------------------------
def reverse_attribute_order(tree, meta):
    for el in tree.iter():
        if isinstance(el.tag, str) and len(el.attrib) > 1:
            items = list(el.attrib.items())
            el.attrib.clear()
            for key, value in reversed(items):
                el.set(key, value)


def reindent(tree, meta):
    etree.indent(tree, space="  ")


def reverse_record_order(tree, meta):
    for clinical in tree.iter(O + "ClinicalData"):
        subjects = list(clinical)
        for s in subjects:
            clinical.remove(s)
        clinical.extend(reversed(subjects))


def change_creation_time(tree, meta):
    tree.getroot().set("CreationDateTime", "2030-01-01T00:00:00")
    tree.getroot().set("AsOfDateTime", "2030-01-01T00:00:00")


def change_metadata_version_oid(tree, meta):
    for mdv in tree.iter(O + "MetaDataVersion"):
        mdv.set("OID", mdv.get("OID").rsplit("_", 2)[0] + "_2030-01-01_0000")


HARMLESS = [reverse_attribute_order, reindent, reverse_record_order, change_creation_time,
            change_metadata_version_oid]


def mutated(path, mutation):
    tree, meta = load(path)
    try:
        expected = mutation(tree, meta)
    except NotApplicable as exc:
        pytest.skip(f"{path.name}: {exc}")
    return expected, etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize("mutation", HARMFUL, ids=lambda m: m.__name__)
@pytest.mark.parametrize("path", corpus_params())
def test_a_harmful_change_is_found_at_its_place_and_nothing_else_fails(path, mutation):
    expected, xml = mutated(path, mutation)

    result = compare_documents(path, xml)

    failures = [(d.kind, d.location) for d in result.findings if d.severity == "failure"]
    assert not result.passed
    assert failures == expected, [str(d) for d in result.findings]


@pytest.mark.parametrize("mutation", HARMLESS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("path", corpus_params())
def test_a_harmless_change_causes_no_finding(path, mutation):
    _, xml = mutated(path, mutation)

    result = compare_documents(path, xml)

    assert result.passed and result.findings == (), [str(d) for d in result.findings]


def test_a_value_change_names_the_record_event_instance_and_field():
    path = next((p.values[0] for p in corpus_params() if p.values[0] is not None
                 and p.values[0].name == "example-longitudinal.xml"), None)
    if path is None:
        pytest.skip("example-longitudinal.xml not available")
    xml = path.read_bytes().replace(b'ItemOID="weight" Value="60.9"', b'ItemOID="weight" Value="75.0"', 1)
    assert xml != path.read_bytes(), "the example changed; update this test"

    result = compare_documents(path, xml)

    (finding,) = result.findings
    assert finding.kind == "value_changed"
    assert finding.location == "record 1 › event follow_up_arm_1 › visit #2 › field weight"
    assert finding.a.startswith("«4 chars, sha256:") and finding.b.startswith("«4 chars, sha256:")
    assert result.records.changed == ("1",)
    assert result.records.per_field == {"weight": 1}
    assert result.records.per_form == {"visit": 1}
