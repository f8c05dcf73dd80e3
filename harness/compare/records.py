"""Compare ClinicalData as REDCap's flat set, never as ItemGroupData layout.

Each record becomes ``(event, repeat instrument, instance, field) -> value``
(`CanonRecord`), split by how it is compared (§6.3): ordinary values must be
equal; calc values are recomputed by REDCap (a difference is a warning);
survey timestamps/identifier are never imported (only counted); files and DAG
assignments are compared only when B was exported with them.

Both documents are streamed side by side. REDCap writes records in natural
order, so matching record ids usually meet and are compared on the spot. A
record that cannot be paired yet (missing, extra, or out of order) is reduced
to a hash (sha256 of its sorted canonical tuples) and parked in a
`SpillStore`, which moves to SQLite when it grows. When its partner arrives
the hashes are compared; only records whose hashes differ are read again
(`harness.compare.reread`) from both files and diffed value by value.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from harness.compare import known
from harness.compare.mask import Masker
from harness.compare.model import SEP, CompareOptions, Difference, RecordsComparison, record_location
from harness.compare.reread import Opener, reread
from harness.compare.store import SpillStore
from harness.odm.model import CLASSIC_EVENT, DAG_FIELD, FileValue, ProjectMetadata, Record, Subject
from harness.odm.reader import assemble
from harness.odm.writer import natural_key

RowKey = tuple[str, str, "int | None"]


@dataclass(slots=True)
class CanonRecord:
    """One record as compared: row key -> {item: value}, per comparison class."""

    rid: str
    strict: dict[RowKey, dict[str, str]]
    calc: dict[RowKey, dict[str, str]]
    files: dict[RowKey, dict[str, FileValue]]
    dag: str | None  # None when DAG assignments are not compared
    n: int  # values compared

    def same(self, other: CanonRecord) -> bool:
        return (self.strict == other.strict and self.calc == other.calc
                and self.files == other.files and self.dag == other.dag)

    def digest(self) -> bytes:
        """sha256 over the sorted canonical tuples, each part length-prefixed (unambiguous)."""
        parts: list[str] = []
        for tag, part in (("s", self.strict), ("c", self.calc)):
            for key in sorted(part, key=_row_sort):
                items = part[key]
                parts.append(f"{tag}{key[0]}|{key[1]}|{key[2]}|{len(items)}")
                parts.extend(f"{len(i)}:{i}{len(v)}:{v}" for i, v in sorted(items.items()))
        for key in sorted(self.files, key=_row_sort):
            parts.append(f"f{key[0]}|{key[1]}|{key[2]}")
            parts.extend(f"{len(i)}:{i}{len(f.doc_name)}:{f.doc_name}{len(f.mime_type)}:{f.mime_type}"
                         f"{hashlib.sha256(f.content).hexdigest()}" for i, f in sorted(self.files[key].items()))
        parts.append(f"d{self.dag}")
        return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).digest()

    def merge(self, other: CanonRecord) -> CanonRecord:
        """Two SubjectData blocks with one key, merged as REDCap's importer would."""
        for mine, theirs in ((self.strict, other.strict), (self.calc, other.calc), (self.files, other.files)):
            for key, items in theirs.items():
                mine[key] = {**mine.get(key, {}), **items}
        self.dag = other.dag or self.dag
        self.n += other.n
        return self


def _row_sort(key: RowKey) -> tuple:
    return (key[0], key[1], key[2] or 0)


@dataclass
class _Side:
    """What one document contributes to classifying its values."""

    meta: ProjectMetadata
    #: Event renames applied before comparing (a lone event restored as classic).
    events: dict[str, str]
    compare_dags: bool
    compare_files: bool
    survey: Counter = field(default_factory=Counter)
    files_skipped: Counter = field(default_factory=Counter)
    dags_skipped: int = 0


class _Listed:
    """The first ``cap`` record ids in natural order, and how many there were."""

    def __init__(self, cap: int):
        self.cap = cap
        self.count = 0
        self._heap: list[tuple[tuple, str]] = []  # max-heap by natural key via negation trick

    def add(self, rid: str) -> None:
        self.count += 1
        if self.cap <= 0:
            return
        item = (_Neg(natural_key(rid)), rid)
        if len(self._heap) < self.cap:
            heapq.heappush(self._heap, item)
        elif item[0] > self._heap[0][0]:
            heapq.heapreplace(self._heap, item)

    def ids(self) -> tuple[str, ...]:
        return tuple(rid for _, rid in sorted(self._heap, key=lambda x: x[0].key))


class _Neg:
    """Inverts ordering so heapq (a min-heap) keeps the smallest natural keys."""

    __slots__ = ("key",)

    def __init__(self, key: tuple):
        self.key = key

    def __lt__(self, other: _Neg) -> bool:
        return other.key < self.key

    def __gt__(self, other: _Neg) -> bool:
        return other.key > self.key


class RecordComparer:
    """Streams two documents' records and collects every difference."""

    def __init__(self, a: ProjectMetadata, b: ProjectMetadata, options: CompareOptions,
                 masker: Masker | None = None):
        self.options = options
        self.masker = masker or Masker(options.show_values)
        single_event = len(a.events) == 1 and not b.events
        b_dags = options.b_dags if options.b_dags is not None else DAG_FIELD in b.pseudo_fields
        # Without A's DAG column there is nothing to hold B's assignments against.
        compare_dags = b_dags and DAG_FIELD in a.pseudo_fields
        self.b_survey_fields = (options.b_survey_fields if options.b_survey_fields is not None
                                else any(known.is_survey_pseudo_field(p, {f.name for f in b.forms})
                                         for p in b.pseudo_fields))
        self.a = _Side(a, {a.events[0].unique_name: CLASSIC_EVENT} if single_event else {},
                       compare_dags=compare_dags, compare_files=options.b_files)
        self.b = _Side(b, {}, compare_dags=compare_dags, compare_files=options.b_files)
        self.longitudinal = bool(b.events) or (bool(a.events) and not single_event)
        forms = {f.name for f in a.forms} | {f.name for f in b.forms}
        item_fields = {**b.item_oids, **a.item_oids}
        self._field_of = {oid: f.name for oid, f in item_fields.items()}
        self._form_of = {oid: f.form for oid, f in item_fields.items()}
        self._order = {oid: i for i, oid in enumerate(item_fields)}
        self._event_order = {e.unique_name: i for i, e in enumerate(a.events or b.events)}
        self.calc = frozenset(oid for oid, f in item_fields.items()
                              if known.is_calculated(f.field_type, f.field_annotation))
        pseudo = set(a.pseudo_fields) | set(b.pseudo_fields)
        self.survey = frozenset(p for p in pseudo if known.is_survey_pseudo_field(p, forms))
        self.special = self.calc | self.survey
        #: Items REDCap fills with "0" in every row that exists (checkbox options, form status).
        self.defaults = frozenset(oid for oid, f in item_fields.items()
                                  if f.field_type == "checkbox" or f.is_form_status)
        for oid in self.survey:
            if oid.endswith("_timestamp"):
                self._form_of[oid] = oid[: -len("_timestamp")]
        # results
        self.fired: Counter = Counter()
        self.missing = _Listed(options.max_listed)
        self.extra = _Listed(options.max_listed)
        self.changed = _Listed(options.max_listed)
        self.per_form: Counter = Counter()
        self.per_field: Counter = Counter()
        self.values_compared = 0
        self.values_differing = 0
        self.failures = 0
        self.warnings = 0
        self._listed: list[tuple[tuple, Difference]] = []
        self._listed_failures = 0
        self._listed_warnings = 0
        self._seq = 0
        self.a_count = 0
        self.b_count = 0
        self.reread = 0

    # -- canonical form ----------------------------------------------------------
    def canon(self, record: Record, side: _Side, *, tally: bool = True) -> CanonRecord:
        strict: dict = {}
        calc: dict = {}
        files: dict = {}
        n = 0
        events = side.events
        special = self.special
        for row in record.rows:
            key = (events.get(row.event, row.event) if events else row.event, row.repeat_instrument, row.instance)
            values = row.values
            if special.isdisjoint(values):
                if values:
                    strict[key] = values
                    n += len(values)
            else:
                s, c = {}, {}
                for item, value in values.items():
                    if item in self.calc:
                        c[item] = value
                    elif item in self.survey:
                        if tally:
                            side.survey[item] += 1
                    else:
                        s[item] = value
                if s:
                    strict[key] = s
                if c:
                    calc[key] = c
                n += len(s) + len(c)
            if row.files:
                if side.compare_files:
                    files[key] = row.files
                    n += len(row.files)
                elif tally:
                    side.files_skipped.update(row.files.keys())
        if record.survey_identifier and tally:
            side.survey[known.SURVEY_IDENTIFIER] += 1
        dag = record.dag if side.compare_dags else None
        if not side.compare_dags and record.dag and tally:
            side.dags_skipped += 1
        return CanonRecord(record.record_id, strict, calc, files, dag, n)

    # -- findings ----------------------------------------------------------------
    def _emit(self, d: Difference, rid: str | None = None) -> None:
        """Count a finding; list it if the list for its severity is not full.

        Listed findings are reported in natural record order whatever order
        the records were met in; findings about no single record come last.
        """
        self._seq += 1
        order = (0, natural_key(rid), self._seq) if rid is not None else (1, (), self._seq)
        if d.severity == "failure":
            self.failures += 1
            if self._listed_failures < self.options.max_listed:
                self._listed_failures += 1
                self._listed.append((order, self._about(d, rid)))
        elif d.severity == "warning":
            self.warnings += 1
            if self._listed_warnings < self.options.max_listed:
                self._listed_warnings += 1
                self._listed.append((order, self._about(d, rid)))

    @staticmethod
    def _about(d: Difference, rid: str | None) -> Difference:
        # The record as a field of its own, so a report can replace it (it may be PHI) by substitution.
        return d if rid is None or d.record is not None else replace(d, record=rid)

    def _fail_value(self, item: str, count: int = 1) -> None:
        self.values_differing += count
        self.per_field[self._field_of.get(item, item)] += count
        self.per_form[self._form_of.get(item, "?")] += count

    def _where(self, rid: str, key: RowKey | None = None, item: str | None = None) -> str:
        return record_location(rid, key, item, longitudinal=self.longitudinal)

    # -- one record pair ------------------------------------------------------------
    def pair(self, a: CanonRecord, b: CanonRecord) -> None:
        if a.same(b):
            self.values_compared += a.n
            return
        failures_before = self.failures
        self._diff(a, b)
        if self.failures > failures_before:
            self.changed.add(a.rid)

    def _rows(self, c: CanonRecord) -> set:
        return set(c.strict) | set(c.calc) | set(c.files)

    def _diff(self, a: CanonRecord, b: CanonRecord) -> None:
        rid = a.rid
        a_rows, b_rows = self._rows(a), self._rows(b)
        order = self._event_order
        for key in sorted(a_rows | b_rows, key=lambda k: (order.get(k[0], len(order)), k[0], k[1], k[2] or 0)):
            if key in a_rows and key in b_rows:
                self._diff_values(rid, key, a.strict.get(key, {}), b.strict.get(key, {}), None)
                self._diff_values(rid, key, a.calc.get(key, {}), b.calc.get(key, {}), known.CALC_RECOMPUTED)
                self._diff_files(rid, key, a.files.get(key, {}), b.files.get(key, {}))
            else:
                self._diff_row(rid, key, a if key in a_rows else b, missing=key in a_rows)
        if a.dag != b.dag:
            self._emit(Difference("dag_changed", "failure", SEP.join((f"record {rid}", "data access group")),
                                  a.dag or None, b.dag or None, None, "the record's Data Access Group differs"), rid)

    def _diff_row(self, rid: str, key: RowKey, side: CanonRecord, *, missing: bool) -> None:
        """A whole row (event / instance) only one side has."""
        strict, calc, files = side.strict.get(key, {}), side.calc.get(key, {}), side.files.get(key, {})
        n = len(strict) + len(calc) + len(files)
        self.values_compared += n
        kind = "row_missing" if missing else "row_extra"
        count = f"{n} values"
        a_text, b_text = (count, None) if missing else (None, count)
        if calc and not files and all(v == "0" and i in self.defaults for i, v in strict.items()):
            # A recomputed calc can appear where A had none (or vanish), and the
            # row it creates holds only REDCap's default zeros besides it.
            rule = known.CALC_RECOMPUTED
            self.fired[rule.name] += len(calc)
            self._emit(Difference(kind, rule.severity, self._where(rid, key), a_text, b_text, rule.name,
                                  rule.reason), rid)
            return
        for item in {**strict, **calc, **files}:
            self._fail_value(item)
        reason = "this row (event / instance) is not in B" if missing else "B has a row (event / instance) A does not"
        self._emit(Difference(kind, "failure", self._where(rid, key), a_text, b_text, None, reason), rid)

    def _diff_values(self, rid, key, av: dict, bv: dict, rule: known.KnownDifference | None) -> None:
        if av == bv:
            self.values_compared += len(av)
            return
        mask = self.masker.value
        items = sorted(av.keys() | bv.keys(), key=lambda i: (self._order.get(i, len(self._order)), i))
        for item in items:
            self.values_compared += 1
            a, b = av.get(item), bv.get(item)
            if a == b:
                continue
            kind = "value_extra" if a is None else "value_missing" if b is None else "value_changed"
            use = rule
            if use is None:
                if a is not None and b is not None:
                    if known.collapse_text(a) == known.collapse_text(b):
                        use = known.PREPASS_TEXT
                elif (a or b) == "0" and item in self.defaults:
                    use = known.DEFAULT_ZERO
            where = self._where(rid, key, item)
            if use is None:
                self._fail_value(item)
                reason = {"value_extra": "B has a value A does not", "value_missing": "the value is not in B",
                          "value_changed": "the value differs"}[kind]
                self._emit(Difference(kind, "failure", where, mask(a), mask(b), None, reason), rid)
            else:
                self.fired[use.name] += 1
                self._emit(Difference(kind, use.severity, where, mask(a), mask(b), use.name, use.reason), rid)

    def _diff_files(self, rid, key, af: dict, bf: dict) -> None:
        if af == bf:
            self.values_compared += len(af)
            return
        show = self.masker.value
        for item in sorted(af.keys() | bf.keys(), key=lambda i: (self._order.get(i, len(self._order)), i)):
            self.values_compared += 1
            a, b = af.get(item), bf.get(item)
            if a == b:
                continue
            where = self._where(rid, key, item)
            if a is None or b is None:
                self._fail_value(item)
                kind = "value_extra" if a is None else "value_missing"
                self._emit(Difference(kind, "failure", where, show(a), show(b), None,
                                      "B has a file A does not" if a is None else "the file is not in B"), rid)
            elif a.content == b.content and not a.mime_type:
                rule = known.FILE_MIME_SNIFFED
                self.fired[rule.name] += 1
                self._emit(Difference("file_changed", rule.severity, where, show(a), show(b), rule.name,
                                      rule.reason), rid)
            else:
                self._fail_value(item)
                what = "content" if a.content != b.content else "name or MIME type"
                self._emit(Difference("file_changed", "failure", where, show(a), show(b), None,
                                      f"the file's {what} differs"), rid)

    def record_missing(self, rid: str, n: int) -> None:
        self.missing.add(rid)
        self.values_compared += n
        self.values_differing += n
        self._emit(Difference("record_missing", "failure", f"record {rid}", f"{n} values", None, None,
                              "the record is not in B"), rid)

    def record_extra(self, rid: str, n: int) -> None:
        self.extra.add(rid)
        self.values_compared += n
        self.values_differing += n
        self._emit(Difference("record_extra", "failure", f"record {rid}", None, f"{n} values", None,
                              "B has a record A does not"), rid)

    # -- aggregates ----------------------------------------------------------------
    def _aggregates(self) -> None:
        for item in sorted(self.a.survey.keys() | self.b.survey.keys()):
            na, nb = self.a.survey[item], self.b.survey[item]
            if na != nb:
                rule = known.SURVEY_FIELDS
                reason = rule.reason if self.b_survey_fields else (
                    "B was exported without survey fields (exportSurveyFields=false), and REDCap never "
                    "imports them anyway; they were not compared.")
                self.fired[rule.name] += abs(na - nb)
                self._emit(Difference("not_compared", rule.severity, SEP.join(("records", f"field {item}")),
                                      f"{na} values", f"{nb} values", rule.name, reason))
        for item, na in sorted(self.a.files_skipped.items()):
            rule = known.FILES_NOT_EXPORTED
            self.fired[rule.name] += na
            self._emit(Difference("not_compared", rule.severity, SEP.join(("records", f"field {item}")),
                                  f"{na} files", None, rule.name, rule.reason))
        if self.a.dags_skipped:
            rule = known.DAGS_NOT_EXPORTED
            self.fired[rule.name] += self.a.dags_skipped
            self._emit(Difference("not_compared", rule.severity, SEP.join(("records", "data access group")),
                                  f"{self.a.dags_skipped} assignments", None, rule.name, rule.reason))

    def result(self) -> RecordsComparison:
        self._aggregates()
        listed = tuple(d for _, d in sorted(self._listed, key=lambda x: x[0]))
        return RecordsComparison(
            a_count=self.a_count, b_count=self.b_count,
            missing=self.missing.ids(), missing_count=self.missing.count,
            extra=self.extra.ids(), extra_count=self.extra.count,
            changed=self.changed.ids(), changed_count=self.changed.count,
            values_compared=self.values_compared, values_differing=self.values_differing,
            per_form=dict(self.per_form.most_common()), per_field=dict(self.per_field.most_common()),
            differences=listed, differences_total=self.failures + self.warnings,
            failures=self.failures, warnings=self.warnings, reread=self.reread,
        )

    # -- the streaming pass -----------------------------------------------------------
    def run(self, a_records: Iterator[Record], b_records: Iterator[Record],
            a_open: Opener, b_open: Opener, names: tuple[str, str] = ("A", "B")) -> RecordsComparison:
        mismatched: set[str] = set()
        with SpillStore(self.options.spill_after) as pending:

            def settle(c: CanonRecord, side: str) -> None:
                other = pending.get(c.rid)
                if other is not None and other[0] != side:
                    pending.pop(c.rid)
                    if other[1] == c.digest():
                        self.values_compared += c.n
                    else:
                        mismatched.add(c.rid)
                else:
                    pending.put(c.rid, (side, c.digest(), c.n))

            ra = next(a_records, None)
            rb = next(b_records, None)
            while ra is not None or rb is not None:
                if ra is not None and rb is not None and ra.record_id == rb.record_id:
                    self.a_count += 1
                    self.b_count += 1
                    self.pair(self.canon(ra, self.a), self.canon(rb, self.b))
                    ra, rb = next(a_records, None), next(b_records, None)
                elif rb is None or (ra is not None and self._take_a(ra.record_id, rb.record_id, pending)):
                    self.a_count += 1
                    settle(self.canon(ra, self.a), "A")
                    ra = next(a_records, None)
                else:
                    self.b_count += 1
                    settle(self.canon(rb, self.b), "B")
                    rb = next(b_records, None)
            for rid, (side, _, n) in pending.items():
                (self.record_missing if side == "A" else self.record_extra)(rid, n)
        if mismatched:
            self._reread(mismatched, a_open, b_open, names)
        return self.result()

    @staticmethod
    def _take_a(a_id: str, b_id: str, pending: SpillStore) -> bool:
        """Which side to advance when the two current records differ."""
        parked = pending.get(a_id)
        if parked is not None and parked[0] == "B":
            return True
        parked = pending.get(b_id)
        if parked is not None and parked[0] == "A":
            return False
        return natural_key(a_id) <= natural_key(b_id)

    def _reread(self, keys: set[str], a_open: Opener, b_open: Opener, names: tuple[str, str]) -> None:
        self.reread = len(keys)
        with SpillStore(self.options.spill_after) as cache:
            for c in self._canon_subjects(reread(a_open, keys, name=names[0]), self.a):
                earlier = cache.get(c.rid)
                cache.put(c.rid, earlier.merge(c) if earlier is not None else c)
            for c in self._canon_subjects(reread(b_open, keys, name=names[1]), self.b):
                a = cache.pop(c.rid)
                if a is not None:
                    self.pair(a, c)

    def _canon_subjects(self, subjects: Iterator[Subject], side: _Side) -> Iterator[CanonRecord]:
        for subject in subjects:
            yield self.canon(assemble(subject, side.meta), side, tally=False)


def compare_records(a_meta: ProjectMetadata, b_meta: ProjectMetadata, a_records: Iterator[Record],
                    b_records: Iterator[Record], a_open: Opener, b_open: Opener,
                    options: CompareOptions = CompareOptions(), masker: Masker | None = None,
                    names: tuple[str, str] = ("A", "B")) -> tuple[RecordsComparison, Counter]:
    """Compare the records of two documents; returns the result and the record rules that fired."""
    comparer = RecordComparer(a_meta, b_meta, options, masker)
    result = comparer.run(a_records, b_records, a_open, b_open, names)
    return result, comparer.fired

