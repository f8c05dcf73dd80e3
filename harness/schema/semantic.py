"""Semantic checks: what the schema cannot see, but REDCap's importer would trip over.

The XSD knows shapes; it cannot know that an ItemOID must be one of the
project's fields, that a radio value must be one of its choices, or that
FormRepeatKey="2" only makes sense on a repeating instrument. These rules do,
on the model (``ProjectMetadata``) and the raw streamed cells (``Subject``):

* metadata rules are plain functions ``(meta) -> Iterable[Finding]``, listed in
  `METADATA_RULES`;
* data rules are plain functions ``(SubjectContext) -> Iterable[Finding]``,
  listed in `SUBJECT_RULES`, run once per ``<SubjectData>`` as it streams.

Memory stays flat: per record only that record's cells; across records only
the set of record ids and a 64-bit digest per (record, event, instrument,
instance) row, enough for a 1 GB archive.

Severity follows what a restore would do: ``error`` where REDCap's API import
rejects or silently misfiles the data; ``warning`` where REDCap itself stores
or writes such values (a text field whose value does not match its validation
is common in real exports) or where only a restore detail is at stake.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from operator import itemgetter

from harness.odm.model import (
    CLASSIC_EVENT,
    DAG_FIELD,
    Cell,
    Field,
    ProjectMetadata,
    Subject,
    checkbox_code,
)
from harness.schema.findings import Finding, Findings

# -- value formats, as REDCap stores them (dates Y-M-D whatever the display format) -------------
_DATE = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_HM = r"(?:[01]\d|2[0-3]):[0-5]\d"
_HMS = _HM + r":[0-5]\d"
_PHONE = (  # REDCap's North American phone validation
    r"(?:\(?(?:[2-9]0[1-9]|[2-9]1[02-9]|[2-9][2-9][0-9])\)?)\s*(?:[.-]\s*)?"
    r"(?:[2-9]1[02-9]|[2-9][02-9]1|[2-9][02-9]{2})\s*(?:[.-]\s*)?[0-9]{4}"
    r"(?:\s*(?:#|x\.?|ext\.?|extension)\s*\d+)?"
)

#: Validation type -> (regular expression of a stored value, what it should look like).
VALIDATION_FORMATS: dict[str, tuple[str, str]] = {
    **{f"date_{o}": (_DATE, "YYYY-MM-DD") for o in ("ymd", "mdy", "dmy")},
    **{f"datetime_{o}": (_DATE + "T" + _HM, "YYYY-MM-DDTHH:MM") for o in ("ymd", "mdy", "dmy")},
    **{f"datetime_seconds_{o}": (_DATE + "T" + _HMS, "YYYY-MM-DDTHH:MM:SS") for o in ("ymd", "mdy", "dmy")},
    "time": (_HM, "HH:MM (00:00-23:59)"),
    "time_hh_mm_ss": (_HMS, "HH:MM:SS"),
    "time_mm_ss": (r"[0-5]\d:[0-5]\d", "MM:SS"),
    "int": (r"[-+]?\d+", "a whole number"),
    "integer": (r"[-+]?\d+", "a whole number"),
    "float": (r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", "a number with a decimal point"),
    "number": (r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", "a number with a decimal point"),
    "number_comma_decimal": (r"[-+]?(?:\d+,?\d*|,\d+)(?:[eE][-+]?\d+)?", "a number with a decimal comma"),
    **{f"number_{n}dp": (rf"[-+]?\d+\.\d{{{n}}}", f"a number with exactly {n} decimal(s)") for n in range(1, 5)},
    **{
        f"number_{n}dp_comma_decimal": (rf"[-+]?\d+,\d{{{n}}}", f"a number with exactly {n} decimal(s) after a comma")
        for n in range(1, 5)
    },
    "email": (r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address"),
    "phone": (_PHONE, "a North American phone number"),
    "zipcode": (r"\d{5}(?:-\d{4})?", "a US ZIP code (12345 or 12345-6789)"),
    "postalcode_canada": (r"[ABCEGHJ-NPRSTVXYabceghj-nprstvxy]\d[A-Za-z]\s?\d[A-Za-z]\d", "a Canadian postal code"),
    "ssn": (r"\d{3}-\d{2}-\d{4}", "a social security number (123-45-6789)"),
    "alpha_only": (r"[A-Za-z]+", "letters only"),
    "mrn_10d": (r"\d{10}", "a 10-digit number"),
    "mrn_generic": (r"[A-Za-z0-9_-]+", "letters, digits, - and _"),
}
_COMPILED = {name: re.compile(pattern) for name, (pattern, _) in VALIDATION_FORMATS.items()}
_BOOLEAN_CODES = frozenset({"0", "1"})
_CODED = frozenset({"radio", "select", "sql", "yesno", "truefalse", "checkbox"})


def _calendar_checked(pattern: re.Pattern) -> Callable[[str], bool]:
    def fits(value: str) -> bool:
        if not pattern.fullmatch(value):
            return False
        try:  # the pattern allows 2023-02-30; the calendar does not
            date.fromisoformat(value[:10])
        except ValueError:
            return False
        return True

    return fits


#: Validation type -> a function telling whether a stored value fits it.
_FITS: dict[str, Callable[[str], bool]] = {
    name: (_calendar_checked(pattern) if name.startswith(("date_", "datetime_"))
           else (lambda value, match=pattern.fullmatch: match(value) is not None))
    for name, pattern in _COMPILED.items()
}


def value_matches(validation: str, value: str) -> bool:
    """Does a stored value fit its validation type? Unknown types always fit."""
    fits = _FITS.get(validation)
    return fits is None or fits(value)


# -- metadata rules ------------------------------------------------------------------------------
def sql_fields_block_restore(meta: ProjectMetadata) -> Iterator[Finding]:
    """REDCap 14.7+ exports dynamic SQL fields without choices; the API import then rejects them."""
    for f in meta.fields:
        if f.field_type == "sql" and not f.choices:
            yield Finding(
                "warning",
                "SEM-RESTORE-BLOCKER-SQL",
                f"sql field {f.name!r} has no choices in the file; REDCap's API import will reject the project "
                "(\"Each multiple choice field … must have choices listed in column F\")",
                field=f.name,
                hint="recent REDCap versions leave the SQL query and its choices out of project XML; before a "
                "restore, change the field to text (or give it choices) in a copy of the file, or restore via the UI",
            )


def choice_fields_have_choices(meta: ProjectMetadata) -> Iterator[Finding]:
    for f in meta.fields:
        if f.field_type in ("radio", "select", "checkbox") and not f.choices:
            yield Finding(
                "error",
                "SEM-NO-CHOICES",
                f"{f.field_type} field {f.name!r} has no choices; REDCap's API import rejects multiple-choice "
                "fields without choices",
                field=f.name,
                hint="its CodeList (or redcap:CheckboxChoices) is missing or empty; re-export the project",
            )


def checkbox_items_match_choices(meta: ProjectMetadata) -> Iterator[Finding]:
    """Each checkbox's ItemRefs (var___code) must be exactly its choices, as REDCap expands them."""
    refs: dict[str, list[str]] = {}
    for group in meta.item_groups:
        for ref in group.items:
            refs.setdefault(ref.variable, []).append(ref.item_oid)
    for f in meta.fields:
        if f.field_type != "checkbox" or not f.choices:
            continue
        expected = list(f.export_names())
        actual = refs.get(f.name, [])
        if set(actual) != set(expected):
            missing = [o for o in expected if o not in actual]
            extra = [o for o in actual if o not in expected]
            detail = "; ".join(
                part for part in (
                    f"no ItemRef for {', '.join(missing)}" if missing else "",
                    f"ItemRefs for {', '.join(extra)} that match no choice" if extra else "",
                ) if part
            )
            yield Finding(
                "error",
                "SEM-CHECKBOX-MISMATCH",
                f"checkbox {f.name!r}: its choices ({f.checkbox_choices or ', '.join(c.code for c in f.choices)}) "
                f"do not match its expanded items: {detail}",
                field=f.name,
                hint="REDCap writes one ItemDef/ItemRef per choice, named var___code; the file was edited by hand "
                "or cut short — re-export the project",
            )


METADATA_RULES: tuple[Callable[[ProjectMetadata], Iterable[Finding]], ...] = (
    sql_fields_block_restore,
    choice_fields_have_choices,
    checkbox_items_match_choices,
)


# -- per-subject context ---------------------------------------------------------------------------
_BLOCK = itemgetter(0, 1, 2, 3)  # (event, event key, form, form key) of a Cell
_ITEM = itemgetter(5)
_GROUP = itemgetter(4)


@dataclass
class ItemRule:
    """What a value of one ItemOID must look like, computed once per file."""

    field: Field | None
    codes: frozenset[str] | None  # allowed codes for coded fields (and DAG names); None = not coded
    validation: str  # a key of VALIDATION_FORMATS, or ""

    @cached_property
    def fits(self) -> Callable[[str], bool]:
        return _FITS[self.validation]


class ProjectFacts:
    """Per-file lookups built once from the metadata (sets and dicts, no per-record state)."""

    def __init__(self, meta: ProjectMetadata):
        self.meta = meta
        self.classic = not meta.events
        self.event_forms = {e: frozenset(forms) for e, forms in meta.event_forms().items()}
        self.forms = frozenset(meta.form_map)
        self.item_groups = frozenset(g.oid for g in meta.item_groups) | {""}
        self.missing_codes = frozenset(c.code for c in meta.missing_data_codes)
        self.dags = frozenset(unique for _, unique in meta.dags) if meta.group("DataAccessGroupsGroup") else None
        #: Every ItemOID the data may use (fields, checkbox options, pseudo-fields).
        self.items: set[str] = set(meta.item_oids) | set(meta.pseudo_fields)
        #: The ItemOIDs whose values have something to check, and what.
        self.value_rules: dict[str, ItemRule] = {}
        for oid, f in meta.item_oids.items():
            codes = self._codes(f)
            validation = f.validation if f.validation in _COMPILED and f.field_type == "text" else ""
            if codes is not None or validation:
                self.value_rules[oid] = ItemRule(f, codes, validation)
        for f in meta.fields:  # missing-data codes on checkboxes are extra pseudo-options
            if f.field_type == "checkbox":
                for code in self.missing_codes:
                    oid = f"{f.name}___{checkbox_code(code)}"
                    self.items.add(oid)
                    self.value_rules.setdefault(oid, ItemRule(f, _BOOLEAN_CODES, ""))
        if self.dags is not None:
            self.items.add(DAG_FIELD)
            self.value_rules[DAG_FIELD] = ItemRule(None, self.dags, "")
        self._repeating: dict[tuple[str, str], tuple[bool, bool]] = {}

    @staticmethod
    def _codes(f: Field) -> frozenset[str] | None:
        if f.field_type not in _CODED:
            return None
        if f.field_type in ("yesno", "truefalse", "checkbox"):
            return _BOOLEAN_CODES
        if not f.choices:  # sql fields from 14.7+ carry no choices: nothing to check against
            return None
        return frozenset(c.code for c in f.choices)

    def event_of(self, cell_event: str) -> str:
        return cell_event or CLASSIC_EVENT

    def repeating(self, event: str, form: str) -> tuple[bool, bool]:
        """(the event repeats, the instrument repeats in it), cached per pair."""
        key = (event, form)
        found = self._repeating.get(key)
        if found is None:
            found = self._repeating[key] = (self.meta.is_repeating_event(event),
                                            self.meta.is_repeating_form(event, form))
        return found


class SubjectContext:
    """One SubjectData with the project facts the data rules need.

    Most rules concern a *block* of cells, one (event, event key, form, form
    key) — which event, form and instance the values belong to — so the
    blocks are computed once; a record has a handful of them but may have
    thousands of cells.
    """

    def __init__(self, subject: Subject, meta: ProjectMetadata, project: ProjectFacts):
        self.subject = subject
        self.meta = meta
        self.project = project
        self.key = subject.key

    @cached_property
    def blocks(self) -> dict[tuple[str, str, str, str], Cell]:
        """(event, event key, form, form key) -> the first cell of that block."""
        cells = self.subject.cells[::-1]  # reversed, so the first cell of each block is the one kept
        return dict(zip(map(_BLOCK, cells), cells))

    @cached_property
    def item_oids(self) -> set[str]:
        return set(map(_ITEM, self.subject.cells))

    @cached_property
    def group_oids(self) -> set[str]:
        return set(map(_GROUP, self.subject.cells))

    def first_with_item(self, item_oid: str) -> Cell:
        return next(c for c in self.subject.cells if c.item_oid == item_oid)

    def first_in_group(self, group_oid: str) -> Cell:
        return next(c for c in self.subject.cells if c.group_oid == group_oid)

    def where(self, cell: Cell, **kw) -> dict:
        return dict(record=self.key, event=cell.event or None, line=cell.line or None, **kw)


# -- data rules ----------------------------------------------------------------------------------
def subject_key_present(ctx: SubjectContext) -> Iterator[Finding]:
    if not ctx.key.strip():
        yield Finding(
            "error",
            "SEM-EMPTY-SUBJECTKEY",
            "a SubjectData has an empty SubjectKey, so its data belong to no record",
            line=ctx.subject.line or None,
            record=ctx.key,
            hint="every record needs its record ID; the file was edited by hand or damaged",
        )


def events_and_forms_defined(ctx: SubjectContext) -> Iterator[Finding]:
    """StudyEventOID and FormOID name an event and instrument of the project, mapped to each other."""
    p = ctx.project
    for (cell_event, event_key, form, form_key), cell in ctx.blocks.items():
        event = p.event_of(cell_event)
        if event not in p.event_forms:
            yield Finding(
                "error", "SEM-UNDEFINED-EVENT",
                f"data for event {event!r}, which the project does not define",
                hint="REDCap's import fails with \"The unique event name … does not exist\"; "
                     "the data and metadata come from different exports or projects",
                **ctx.where(cell, instance=event_key or None),
            )
        if form not in p.forms:
            yield Finding(
                "error", "SEM-UNDEFINED-FORM",
                f"data for instrument {form!r} (FormOID), which the project does not define",
                hint="FormOID must be Form.<instrument name> of a FormDef",
                **ctx.where(cell, instance=form_key or None),
            )
        elif not p.classic and event in p.event_forms and form not in p.event_forms[event]:
            yield Finding(
                "error", "SEM-FORM-NOT-IN-EVENT",
                f"instrument {form!r} has data in event {event!r}, but is not designated for that event",
                hint="REDCap only stores instruments in the events they are mapped to; the import drops or "
                     "refuses this data — check the event mapping (FormRef) or re-export",
                **ctx.where(cell),
            )


def items_defined(ctx: SubjectContext) -> Iterator[Finding]:
    """Every ItemOID is a field, checkbox option or export pseudo-field of the project."""
    for oid in sorted(ctx.item_oids - ctx.project.items):
        cell = ctx.first_with_item(oid)
        yield Finding(
            "error", "SEM-UNDEFINED-ITEM",
            f"value for {oid!r}, which is not a field (or checkbox option) of the project",
            hint="REDCap's import fails with \"The following fields were not found in the project\"",
            **ctx.where(cell, field=oid),
        )


def item_groups_defined(ctx: SubjectContext) -> Iterator[Finding]:
    for oid in sorted(ctx.group_oids - ctx.project.item_groups):
        cell = ctx.first_in_group(oid)
        yield Finding(
            "warning", "SEM-UNDEFINED-ITEMGROUP",
            f"ItemGroupData {oid!r} is not an ItemGroupDef of the project",
            hint="REDCap's import ignores ItemGroupOID, so this does not change what is restored",
            **ctx.where(cell, field=cell.item_oid),
        )


def _positive(key: str) -> bool:
    return key.isdigit() and int(key) >= 1


def repeat_keys_fit(ctx: SubjectContext) -> Iterator[Finding]:
    """Instance numbers above 1 only on repeating events or instruments, and always whole numbers."""
    p = ctx.project
    for (cell_event, event_key, form, form_key), cell in ctx.blocks.items():
        if event_key in ("", "1") and form_key in ("", "1"):
            continue
        event = p.event_of(cell_event)
        event_repeats, form_repeats = p.repeating(event, form)
        for attribute, key, repeating, what in (
            ("StudyEventRepeatKey", event_key, event_repeats, f"event {event!r}"),
            ("FormRepeatKey", form_key, form_repeats, f"instrument {form!r}"),
        ):
            if key in ("", "1"):
                continue
            if not _positive(key):
                yield Finding(
                    "error", "SEM-REPEAT-KEY",
                    f"{attribute}={key!r} on {what} is not an instance number (1, 2, 3, …)",
                    hint="REDCap reads repeat keys as instance numbers",
                    **ctx.where(cell, instance=key),
                )
            elif not repeating:
                yield Finding(
                    "error", "SEM-REPEAT-KEY",
                    f"instance {key} of {what}, which is not set up to repeat"
                    + (f" in event {event!r}" if attribute == "FormRepeatKey" and not p.classic else ""),
                    hint="only repeating instruments/events have instances above 1 "
                         "(redcap:RepeatingInstrumentsAndEvents); the restore would merge or drop these values",
                    **ctx.where(cell, instance=key),
                )


def values_fit_fields(ctx: SubjectContext) -> Iterator[Finding]:
    """Codes in their code lists, DAGs that exist, and values in their validation's format."""
    p = ctx.project
    rules = p.value_rules
    missing = p.missing_codes
    for event, _, _, _, _, item, value, line in ctx.subject.cells:
        rule = rules.get(item)
        if rule is None:
            continue
        # Blank values, uploaded files and missing-data codes are allowed in any field.
        if rule.codes is not None:
            if value in rule.codes or value.__class__ is not str or value == "" or value in missing:
                continue
            where = dict(record=ctx.key, event=event or None, line=line or None, field=item)
            if item == DAG_FIELD:
                yield Finding(
                    "error", "SEM-UNKNOWN-DAG",
                    f"record is assigned to Data Access Group {value!r}, which DataAccessGroupsGroup does not "
                    f"define (known: {', '.join(sorted(rule.codes)) or 'none'})",
                    hint="REDCap's import rejects unknown DAG names; the DAG was renamed or deleted after export",
                    **where,
                )
                continue
            codes = sorted(rule.codes)
            yield Finding(
                "error", "SEM-CODE-NOT-IN-LIST",
                f"{rule.field.field_type} field {item!r} holds {value!r}, which is not one of its codes "
                f"({', '.join(codes[:12])}{', …' if len(codes) > 12 else ''})"
                + (" or a missing-data code" if missing else ""),
                hint="REDCap's import rejects values outside the choices; the choices were edited after the data "
                     "were entered, or the value was changed by hand",
                **where,
            )
        elif value.__class__ is str and value and not rule.fits(value) and value not in missing:
            yield Finding(
                "warning", "SEM-VALIDATION-TYPE",
                f"{item!r} ({rule.validation}) holds {value!r}, not {VALIDATION_FORMATS[rule.validation][1]}",
                hint="REDCap keeps values entered before a validation was added, and its import may reject them; "
                     "fix the value in REDCap or remove the validation",
                record=ctx.key, event=event or None, line=line or None, field=item,
            )


SUBJECT_RULES: tuple[Callable[[SubjectContext], Iterable[Finding]], ...] = (
    subject_key_present,
    events_and_forms_defined,
    items_defined,
    item_groups_defined,
    repeat_keys_fit,
    values_fit_fields,
)

#: Findings of these codes are folded per field, whatever the value; every other data finding is
#: folded with identical ones (same message, which never names the record), except those below.
_FOLD_BY_FIELD = {"SEM-CODE-NOT-IN-LIST", "SEM-VALIDATION-TYPE", "SEM-UNDEFINED-ITEM"}
_NOT_FOLDED = {"SEM-EMPTY-SUBJECTKEY"}


def row_key(project: ProjectFacts, block: tuple[str, str, str, str]) -> tuple[str, str, int | None]:
    """(event, repeat instrument, instance): REDCap's flat-row key, as its importer forms it."""
    cell_event, event_key, form, form_key = block
    event = cell_event or (CLASSIC_EVENT if project.classic else "")
    event_repeats, form_repeats = project.repeating(event, form)
    if event_repeats:
        return event, "", int(event_key) if event_key.isdigit() else 1
    if form_repeats:
        return event, form, int(form_key) if form_key.isdigit() else 1
    return event, "", None


class SemanticCheck:
    """Runs every rule over one file's metadata and streamed subjects."""

    def __init__(self, meta: ProjectMetadata, findings: Findings):
        self.meta = meta
        self.findings = findings
        self.project = ProjectFacts(meta)
        self._records: set[str] = set()
        # hash((record, event, instrument, instance)) of every row seen: 64 bits per row keeps a
        # 1 GB archive's rows in a few MB; a false "duplicate" needs a 64-bit collision.
        self._rows: set[int] = set()
        for rule in METADATA_RULES:
            for finding in rule(meta):
                findings.add(finding)

    def subject(self, subject: Subject) -> None:
        ctx = SubjectContext(subject, self.meta, self.project)
        for rule in SUBJECT_RULES:
            for finding in rule(ctx):
                if finding.code in _NOT_FOLDED:
                    self.findings.add(finding)
                else:
                    self.findings.add(finding, group=finding.field if finding.code in _FOLD_BY_FIELD
                                      else finding.message)
        self._rows_once(ctx)

    def _rows_once(self, ctx: SubjectContext) -> None:
        """A row may be spread over several blocks of ONE SubjectData (REDCap does that, research §3.2),
        but a second SubjectData with the same key must not bring the same row again."""
        key = ctx.key
        rows: dict[tuple, Cell] = {}
        for block, cell in ctx.blocks.items():
            rows.setdefault(row_key(self.project, block), cell)
        split = key in self._records
        for (event, instrument, instance), cell in rows.items():
            digest = hash((key, event, instrument, instance))
            if split and digest in self._rows:
                self.findings.add(Finding(
                    "error", "SEM-DUPLICATE-ROW",
                    # The record is a field of the finding (reports may replace it: it can be PHI).
                    f"the record has a second SubjectData with the same row (event {event!r}"
                    + (f", instrument {instrument!r}" if instrument else "")
                    + (f", instance {instance}" if instance else "") + "); which values win is undefined",
                    line=ctx.subject.line or None, record=key, event=event,
                    instance=str(instance) if instance else None,
                    hint="REDCap writes each record once; two exports were concatenated or the file was edited",
                ))
            self._rows.add(digest)
        if split:
            self.findings.add(Finding(
                "warning", "SEM-RECORD-SPLIT",
                "the record appears in more than one SubjectData",
                line=ctx.subject.line or None, record=key,
                hint="REDCap writes each record as one SubjectData; the import merges them",
            ), group=key)
        self._records.add(key)
