"""Metadata is compared like a data dictionary, and each change is named where a REDCap admin looks.

Fields are keyed by variable, forms and events by name, choices by code;
order matters only among the items both sides have, so one lost field is one
finding. Each finding has a fixed kind and a location such as
``form demographics › field dob › validation``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fixtures.generate import GeneratorConfig, build
from harness.compare import KINDS, Difference
from harness.compare.structure import canonical, compare_structure
from harness.odm.model import Choice, Form, RepeatingForm

META = build(GeneratorConfig(seed=2, records=0, longitudinal=True, arms=2, repeating_forms=True)).meta


def fields(meta, name, **changes):
    return replace(meta, fields=tuple(replace(f, **changes) if f.name == name else f for f in meta.fields))


def found(b_meta, a_meta=META):
    result = compare_structure(a_meta, b_meta)
    return [(d.kind, d.severity, d.location) for d in result.differences]


def test_the_same_metadata_has_no_differences_and_counts_what_was_compared():
    result = compare_structure(META, META)

    assert result.differences == ()
    assert result.items > 500


@pytest.mark.parametrize("attribute, value", [
    ("validation", "date_mdy"), ("label", "Date of birth (changed)"), ("branching_logic", "[sex] = '1'"),
    ("field_annotation", "@HIDDEN"), ("required", True), ("identifier", False), ("range_min", "1900-01-01"),
    ("section_header", "About you"), ("field_note", "Day first, please"),
])
def test_a_changed_field_attribute_is_named_by_form_field_and_attribute(attribute, value):
    assert getattr(META.field_map["dob"], attribute) != value

    assert found(fields(META, "dob", **{attribute: value})) == [
        ("metadata_changed", "failure", f"form demographics › field dob › {attribute}")]


def test_a_dropped_field_is_one_finding_not_also_a_reordering():
    b = replace(META, fields=tuple(f for f in META.fields if f.name != "sex"))

    assert found(b) == [("field_missing", "failure", "form demographics › field sex")]


def test_an_added_field_and_a_moved_field_are_named():
    extra = replace(META.field_map["dob"], name="dob2")
    added = replace(META, fields=META.fields + (extra,))
    moved = fields(META, "phone", form="measurements")

    assert found(added) == [("field_extra", "failure", "form demographics › field dob2")]
    assert ("metadata_changed", "failure", "form demographics › field phone › form") in found(moved)


def test_reordered_fields_in_a_form_are_one_finding():
    order = list(META.fields)
    i, j = [k for k, f in enumerate(order) if f.name in ("first_name", "last_name")]
    order[i], order[j] = order[j], order[i]

    assert found(replace(META, fields=tuple(order))) == [
        ("metadata_changed", "failure", "form demographics › field order")]


def test_choice_labels_codes_and_order_are_code_list_changes():
    sex = META.field_map["sex"]
    relabelled = fields(META, "sex", choices=(replace(sex.choices[0], label="Woman"),) + sex.choices[1:])
    added = fields(META, "sex", choices=sex.choices + (Choice("8", "Another answer"),))
    reordered = fields(META, "sex", choices=sex.choices[::-1])

    assert found(relabelled) == [
        ("codelist_changed", "failure", f"form demographics › field sex › choice {sex.choices[0].code} › label")]
    assert found(added) == [("codelist_changed", "failure", "form demographics › field sex › choice 8")]
    assert found(reordered) == [("codelist_changed", "failure", "form demographics › field sex › choice order")]


def test_forms_events_arms_and_mappings_are_named():
    event = META.events[0]
    relabelled_form = replace(META, forms=tuple(Form(f.name, f.label + "!") if f.name == "measurements" else f
                                                for f in META.forms))
    moved_event = replace(META, events=tuple(replace(e, day_offset="99") if e is event else e for e in META.events))
    unmapped = replace(META, events=tuple(replace(e, forms=e.forms[1:]) if e is event else e for e in META.events))
    renamed_arm = replace(META, events=tuple(replace(e, arm_name="Treatment") if e.arm_num == 2 else e
                                             for e in META.events))
    no_event = replace(META, events=META.events[1:])

    assert found(relabelled_form) == [("metadata_changed", "failure", "form measurements › label")]
    assert found(moved_event) == [("metadata_changed", "failure", f"event {event.unique_name} › day_offset")]
    assert found(unmapped) == [("mapping_changed", "failure", f"event {event.unique_name} › form {event.forms[0]}")]
    assert found(renamed_arm) == [("metadata_changed", "failure", "arm 2 › name")]
    assert ("event_missing", "failure", f"event {event.unique_name}") in found(no_event)


def test_repeating_set_up_changes_are_repeating_changes():
    first = META.repeating_forms[0]
    relabelled = replace(META, repeating_forms=(replace(first, custom_label="[visit]"),) + META.repeating_forms[1:])
    dropped = replace(META, repeating_forms=META.repeating_forms[1:])
    added = replace(META, repeating_forms=META.repeating_forms + (RepeatingForm(first.event, "measurements"),))

    where = f"repeating › event {first.event} › form {first.form}"
    assert found(relabelled) == [("repeating_changed", "failure", f"{where} › custom_label")]
    assert found(dropped) == [("repeating_changed", "failure", where)]
    assert found(added) == [("repeating_changed", "failure", f"repeating › event {first.event} › form measurements")]


def test_derived_xml_layout_is_not_compared():
    # Item groups and checkbox option code lists are derived by REDCap from what is compared.
    b = replace(META, item_groups=META.item_groups[:1], code_lists=META.code_lists[:1], pseudo_fields=("x",))

    assert found(b) == []


def test_the_canonical_model_uses_only_plain_values():
    model = canonical(META)

    assert set(model) == {"odm", "study", "settings", "setting_attributes", "arms", "events", "event_order",
                          "forms", "form_order", "fields", "repeating", "groups"}
    assert model["fields"]["sex"]["choices"][META.field_map["sex"].choices[0].code]["label"]


def test_differences_only_have_known_kinds_and_severities():
    with pytest.raises(ValueError, match="unknown difference kind"):
        Difference("value_moved", "failure", "record 1")
    with pytest.raises(ValueError, match="unknown severity"):
        Difference("value_changed", "error", "record 1")
    assert {"record_missing", "value_changed", "metadata_changed", "field_missing", "mapping_changed",
            "codelist_changed", "setting_changed", "group_changed", "repeating_changed"} <= KINDS
