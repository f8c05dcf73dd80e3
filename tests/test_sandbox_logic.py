"""REDCap logic, as the sandbox evaluates it: calculated fields on import, and ``filterLogic``.

Each case is one calc field of a small project; the record's inputs are
a=3, b=4, h=1.75, w=70, d1=2020-01-01, d2=2021-01-01, txt="Hello", pets={2},
and ``blank`` is never filled.
"""

from __future__ import annotations

import html

import pytest

from harness.sandbox.fixtures import redcap_sandbox  # noqa: F401 - the fixture
from sandbox_helpers import api, create_project, item_def, mini_project, subject

CASES = [
    ("[a] + [b]", "7"),
    ("[a] + [blank]", ""),  # arithmetic with a blank is blank
    ("[a] * 2 ^ 2", "12"),
    ("round([w] / ([h] * [h]), 1)", "22.9"),
    ("round(38.04, 1)", "38"),  # PHP's round returns a number
    ("roundup(2.01, 1)", "2.1"),
    ("rounddown(-2.19, 1)", "-2.1"),
    ("sum([a], [blank], [b])", "7"),  # sum/mean/min/max skip blanks
    ("mean([a], [b])", "3.5"),
    ("min([a], [b], [blank])", "3"),
    ("max([a], [b])", "4"),
    ("abs(-2.5)", "2.5"),
    ("sqrt(16)", "4"),
    ("if([a] > 2 and [b] < 5, 1, 0)", "1"),
    ("if([a] = 3 or [blank] = 1, 10, 20)", "10"),
    ("if(not([a] = 3), 1, 0)", "0"),
    ("if([blank] = '', 1, 0)", "1"),
    ("if([blank] > 1, 1, 0)", "0"),  # an ordering comparison with a blank is false
    ("if([blank] < 1, 1, 0)", "0"),
    ("[pets(2)] + [pets(1)]", "1"),
    ("datediff([d1], [d2], 'd')", "366"),
    ("rounddown(datediff([d1], [d2], 'y'), 0)", "1"),
    ("datediff([d2], [d1], 'd', true)", "-366"),
    ("datediff([d1], [d2], 'M', 'ymd', true)", "12.023653088042"),
    ("datediff('2020-01-01 10:00', '2020-01-01 12:30', 'h')", "2.5"),
    ("datediff('2020-01-01 10:00', '2020-01-01 12:30', 'm')", "150"),
    ("datediff([d1], [blank], 'd')", ""),
    ("if(isnumber([a]) and not(isnumber([txt])), 1, 0)", "1"),
    ("if(isblankormissingcode([blank]), 1, 0)", "1"),
    ("if(contains([txt], 'ELL') and starts_with([txt], 'he') and ends_with([txt], 'lo'), 1, 0)", "1"),
    ("length(concat([txt], ' ', [a]))", "7"),
    ("if(left([txt], 2) = 'He' and right([txt], 2) = 'lo', 1, 0)", "1"),
    ("if(lower([txt]) = 'hello' and upper([txt]) = 'HELLO', 1, 0)", "1"),
    ("1 / 3", "0.33333333333333"),  # PHP prints floats with 14 significant digits
    ("0.1 + 0.2", "0.3"),
    ("[a] / 0", ""),
]


@pytest.fixture(scope="module")
def computed(redcap_sandbox) -> dict[str, str]:
    inputs = {"a": "3", "b": "4", "h": "1.75", "w": "70", "d1": "2020-01-01", "d2": "2021-01-01", "txt": "Hello"}
    calcs = {f"c{i}": eq for i, (eq, _) in enumerate(CASES)}
    items = [item_def("record_id"), item_def("blank")] + [item_def(n) for n in inputs] + [
        item_def("pets", "checkbox", data_type="boolean", codelist=True),
        item_def("tag", extra=' redcap:FieldAnnotation="@CALCTEXT(if([a] &gt; 2, &#039;big&#039;, &#039;small&#039;))"'),
    ] + [item_def(n, "calc", data_type="float", extra=f' redcap:Calculation="{html.escape(eq)}"')
         for n, eq in calcs.items()]
    codes = ('<CodeList OID="pets.choices" Name="pets" DataType="boolean" redcap:Variable="pets" '
             'redcap:CheckboxChoices="1, Cat | 2, Dog"/>')
    values = {"record_id": "1", **inputs, "pets___2": "1", "tag": "stale"} | {n: "999" for n in calcs}
    xml = mini_project(items, ["record_id", "blank", *inputs, "pets", "tag", *calcs], subject("1", values),
                       code_lists=codes)
    token = create_project(redcap_sandbox, xml, title="Logic")
    row = api(redcap_sandbox, token, "record")[0]
    row["_token"] = token
    return row


@pytest.mark.parametrize("index,equation,expected", [(i, eq, ex) for i, (eq, ex) in enumerate(CASES)],
                         ids=[eq for eq, _ in CASES])
def test_a_calculated_field_is_recomputed_on_import(computed, index, equation, expected):
    assert computed[f"c{index}"] == expected


def test_calctext_is_recomputed_too(computed):
    assert computed["tag"] == "big"


@pytest.mark.parametrize("logic,count", [
    ("[a] = 3", 1), ("[a] = '3.0'", 1), ("[a] <> 3", 0), ("[txt] = 'Hello'", 1), ("[blank] = ''", 1),
    ("[blank] <> ''", 0), ("[pets(2)] = '1' and [pets(1)] = '0'", 1), ("datediff([d1], [d2], 'd') > 365", 1),
])
def test_filter_logic_uses_the_same_rules(redcap_sandbox, computed, logic, count):
    assert len(api(redcap_sandbox, computed["_token"], "record", filterLogic=logic)) == count
