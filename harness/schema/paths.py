"""Readable locations of elements: ``/ODM/ClinicalData/SubjectData[@SubjectKey="12"]/…``.

Validation reads the file as written, so line numbers are the editor's; every
finding also carries a path built from the keys a REDCap admin knows: record
(SubjectKey), event, form, item, which survives reformatting. libxml2 reports positions as ``/*/*[2]/redcap:Foo``;
`resolve` turns that back into the element so it can be described the same way.
"""

from __future__ import annotations

import re

from lxml import etree

from harness.odm.stream import ODM_NS, REDCAP_NS

#: Attributes that identify an element among its siblings, by local name.
KEYS: dict[str, tuple[str, ...]] = {
    "Study": ("OID",),
    "MetaDataVersion": ("OID",),
    "StudyEventDef": ("OID",),
    "FormDef": ("OID",),
    "ItemGroupDef": ("OID",),
    "ItemDef": ("OID",),
    "CodeList": ("OID",),
    "StudyEventRef": ("StudyEventOID",),
    "FormRef": ("FormOID",),
    "ItemGroupRef": ("ItemGroupOID",),
    "ItemRef": ("ItemOID",),
    "CodeListRef": ("CodeListOID",),
    "CodeListItem": ("CodedValue",),
    "ClinicalData": ("StudyOID",),
    "SubjectData": ("SubjectKey",),
    "StudyEventData": ("StudyEventOID", "StudyEventRepeatKey"),
    "FormData": ("FormOID", "FormRepeatKey"),
    "ItemGroupData": ("ItemGroupOID",),
}
_ITEM_KEY = ("ItemOID",)  # ItemData and every typed ItemData* element

_O = "{%s}" % ODM_NS
_R = "{%s}" % REDCAP_NS


def name_of(tag: str) -> str:
    """``Foo`` for ODM elements, ``redcap:Foo`` for REDCap's, ``{ns}Foo`` otherwise."""
    if tag.startswith(_O):
        return tag[len(_O):]
    if tag.startswith(_R):
        return "redcap:" + tag[len(_R):]
    return tag


def _quote(value: str) -> str:
    value = value if len(value) <= 60 else value[:57] + "…"
    return '"' + value.replace('"', "&quot;") + '"'


def step(el: etree._Element) -> str:
    name = name_of(el.tag)
    keys = KEYS.get(name, _ITEM_KEY if name.startswith("ItemData") else ())
    preds = "".join(f"[@{k}={_quote(el.get(k))}]" for k in keys if el.get(k) is not None)
    return name + preds


def describe(el: etree._Element) -> str:
    """The path from the document root to ``el``, keyed where ODM has keys."""
    steps = []
    node: etree._Element | None = el
    while node is not None and isinstance(node.tag, str):
        steps.append(step(node))
        node = node.getparent()
    return "/" + "/".join(reversed(steps))


_SUBJECT = _O + "SubjectData"


def record_of(el: etree._Element) -> str | None:
    """The record (SubjectKey) ``el`` belongs to, or None outside ClinicalData's SubjectData."""
    node: etree._Element | None = el
    while node is not None:
        if node.tag == _SUBJECT:
            return node.get("SubjectKey")
        node = node.getparent()
    return None


def located(el: etree._Element) -> dict[str, str | None]:
    """``path`` and ``record`` of a finding about ``el``: the record as a field of its own, so a
    report can replace it (record IDs may be PHI) without searching the path for it."""
    return {"path": describe(el), "record": record_of(el)}


def subject_step(key: str) -> str:
    """The step `describe` writes for the SubjectData of record ``key``."""
    return f"SubjectData[@SubjectKey={_quote(key)}]"


_STEP = re.compile(r"^(?P<name>[^\[]+)(?:\[(?P<index>\d+)\])?$")


def resolve(top: etree._Element, xpath: str | None) -> etree._Element:
    """The element named by libxml2's node path relative to the validated ``top``.

    libxml2 writes ``*`` (index among all element siblings) for elements in a
    default namespace and ``prefix:name`` (index among same-named siblings)
    otherwise. Anything unexpected resolves to the deepest element reached.
    """
    if not xpath or not xpath.startswith("/"):
        return top
    parts = xpath.strip("/").split("/")[1:]  # the first step is ``top`` itself
    node = top
    for part in parts:
        m = _STEP.match(part)
        if not m:
            return node
        name, index = m["name"], int(m["index"] or 1)
        if name == "*":
            candidates = [c for c in node if isinstance(c.tag, str)]
        else:
            prefix, _, local = name.rpartition(":")
            ns = node.nsmap.get(prefix or None)
            tag = f"{{{ns}}}{local}" if ns else local
            candidates = [c for c in node if c.tag == tag]
        if index > len(candidates):
            return node
        node = candidates[index - 1]
    return node
