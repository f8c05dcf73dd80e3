"""The cheap pass beside the XSD: REDCap's dialect notes and unknown ``redcap:`` names.

The ``redcap`` profile's schema *accepts* REDCap's known departures from ODM
1.3.1 and any ``redcap:`` name (lax wildcard), so the XSD alone cannot say
where they are. This pass finds them on the same streamed blocks:

* each `dialect.DEVIATIONS` occurrence: a note under ``redcap``, an error under
  ``strict`` (one finding per kind, with the count and the first place);
* ``redcap:`` elements or attributes that ``redcap.xsd`` does not place on
  that element: a warning (``REDCAP-UNKNOWN-ELEMENT`` / ``REDCAP-UNKNOWN-ATTRIBUTE``),
  one per name and place. Usually a newer REDCap than this harness knows;
  the restore passes such settings through, so they deserve a look, not a failure.

Where a ``redcap:`` name may appear is read from the placement tables at the
end of ``redcap.xsd``, so the schema stays the one place that lists them.
Subjects are scanned with one compiled XPath each, in C, because a 1 GB
archive has millions of elements and almost none of them are of interest.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from lxml import etree

from harness.odm.stream import ODM_NS, REDCAP_NS
from harness.schema.dialect import DEVIATIONS, REDCAP_XSD, XS_NS
from harness.schema.findings import Finding, Findings
from harness.schema.paths import located, name_of

_O = "{%s}" % ODM_NS
_R = "{%s}" % REDCAP_NS
_XS = "{%s}" % XS_NS
_NS = {"odm": ODM_NS, "redcap": REDCAP_NS}

# Everything interesting in one SubjectData, found in a single C-level pass.
# (A name test, @redcap:*, is several times faster here than a namespace-uri() predicate.)
_SUBJECT_SCAN = etree.XPath(
    "odm:FormData"
    " | .//odm:ItemGroupData[@ItemGroupOID='' or (odm:ItemDataBase64Binary and odm:ItemData)]"
    " | .//redcap:*"
    " | descendant-or-self::*/@redcap:*",
    namespaces=_NS,
)
_STUDY_SCAN = etree.XPath(
    ".//odm:CodeList[@DataType='boolean'] | .//odm:ItemGroupDef[@Name=''] | .//redcap:* | descendant-or-self::*/@redcap:*",
    namespaces=_NS,
)
_OTHER_SCAN = etree.XPath(".//redcap:* | descendant-or-self::*/@redcap:*", namespaces=_NS)
_ALL_REDCAP_ATTRS = etree.XPath("@redcap:*", namespaces=_NS)


@dataclass(frozen=True)
class Placement:
    """Which ``redcap:`` names ``redcap.xsd`` places on which element (by local name)."""

    attributes: dict[str, frozenset[str]]
    children: dict[str, frozenset[str]]
    #: Every element redcap.xsd declares globally (their contents are typed by the XSD itself).
    elements: frozenset[str]

    def attribute_known(self, element: str, attribute: str) -> bool:
        return attribute in self.attributes.get(element, ())

    def child_known(self, parent: str, child: str) -> bool:
        return child in self.children.get(parent, ())


@functools.cache
def placement() -> Placement:
    root = etree.parse(str(REDCAP_XSD), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()

    def refs(node, kind):
        return frozenset(r.get("ref").partition(":")[2] for r in node.iter(_XS + kind) if r.get("ref"))

    return Placement(
        attributes={g.get("name"): refs(g, "attribute") for g in root.iterchildren(_XS + "attributeGroup")},
        children={g.get("name"): refs(g, "element") for g in root.iterchildren(_XS + "group")},
        elements=frozenset(e.get("name") for e in root.iterchildren(_XS + "element")),
    )


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class DialectCheck:
    """Feeds on the blocks of one document; adds its findings to ``findings`` at `finish`."""

    def __init__(self, profile: str, findings: Findings):
        self.profile = profile
        self.findings = findings
        self.strict = profile == "strict"
        self._places = placement()
        # code -> [count, first line, first path]
        self._seen: dict[str, list] = {}

    # -- blocks ----------------------------------------------------------------------
    def root(self, el: etree._Element) -> None:
        """The ``<ODM>`` root or ``<ClinicalData>`` start (attributes only)."""
        for attr in _ALL_REDCAP_ATTRS(el):
            self._redcap_attribute(el, attr.attrname)

    def study(self, el: etree._Element) -> None:
        for hit in _STUDY_SCAN(el):
            if isinstance(hit, str):  # an attribute value (a "smart string")
                self._redcap_attribute(hit.getparent(), hit.attrname)
            elif hit.tag == _O + "CodeList":
                self._deviation("DIALECT-CODELIST-BOOLEAN", hit)
            elif hit.tag == _O + "ItemGroupDef":
                self._deviation("DIALECT-EMPTY-ITEMGROUPDEF-NAME", hit)
            else:
                self._redcap_element(hit)

    def subject(self, el: etree._Element) -> None:
        for hit in _SUBJECT_SCAN(el):
            if isinstance(hit, str):
                self._redcap_attribute(hit.getparent(), hit.attrname)
            elif hit.tag == _O + "FormData":
                self._deviation("DIALECT-CLASSIC-FORMDATA", hit)
            elif hit.tag == _O + "ItemGroupData":
                if hit.get("ItemGroupOID") == "":
                    self._deviation("DIALECT-EMPTY-ITEMGROUPOID", hit)
                if hit.find(_O + "ItemDataBase64Binary") is not None and hit.find(_O + "ItemData") is not None:
                    self._deviation("DIALECT-MIXED-ITEMDATA", hit)
            else:
                self._redcap_element(hit)

    def other(self, el: etree._Element) -> None:
        """A top-level element other than Study and ClinicalData."""
        if el.tag.startswith(_R):
            self._redcap_element(el)
        for hit in _OTHER_SCAN(el):
            if isinstance(hit, str):
                self._redcap_attribute(hit.getparent(), hit.attrname)
            else:
                self._redcap_element(hit)

    # -- what is found -------------------------------------------------------------
    def _redcap_attribute(self, owner: etree._Element, qname: str) -> None:
        self._deviation("DIALECT-REDCAP-EXTENSIONS", owner)
        if self.strict:
            return
        element = _local(owner.tag)
        if owner.tag.startswith(_R) and element not in self._places.elements and element not in self._places.attributes:
            return  # inside an unknown redcap: element, which is opaque and already warned about
        attribute = _local(qname)
        if not self._places.attribute_known(element, attribute):
            self.findings.add(
                Finding(
                    "warning",
                    "REDCAP-UNKNOWN-ATTRIBUTE",
                    f"redcap:{attribute} on {name_of(owner.tag)} is not a REDCap attribute this version of "
                    "redcap-drill knows there; the schema skipped it",
                    line=owner.sourceline,
                    **located(owner),
                    hint="usually an export from a newer REDCap (then it is harmless) or a hand edit; "
                    "check the spelling and where it sits",
                ),
                group=(element, attribute),
            )

    def _redcap_element(self, el: etree._Element) -> None:
        parent = el.getparent()
        if parent is None:
            self._deviation("DIALECT-REDCAP-EXTENSIONS", el)
            return
        if parent.tag.startswith(_R):
            # Inside a REDCap element: its declared type in redcap.xsd already judged it.
            return
        self._deviation("DIALECT-REDCAP-EXTENSIONS", el)
        if self.strict:
            return
        name = _local(el.tag)
        where = _local(parent.tag)
        if not self._places.child_known(where, name):
            known_elsewhere = name in self._places.elements
            self.findings.add(
                Finding(
                    "warning",
                    "REDCAP-UNKNOWN-ELEMENT",
                    f"redcap:{name} inside {name_of(parent.tag)} is "
                    + ("a REDCap element that does not belong here" if known_elsewhere
                       else "not a REDCap element this version of redcap-drill knows")
                    + "; the schema skipped it",
                    line=el.sourceline,
                    **located(el),
                    hint="a newer REDCap may write settings this harness does not know yet (harmless, passed "
                    "through on restore); otherwise the file was edited by hand",
                ),
                group=(where, name),
            )

    def _deviation(self, code: str, el: etree._Element) -> None:
        seen = self._seen.get(code)
        if seen is None:
            self._seen[code] = [1, el.sourceline, located(el)]
        else:
            seen[0] += 1

    def finish(self) -> None:
        """Add one finding per kind of deviation seen (notes; errors under ``strict``)."""
        for code, (count, line, where) in self._seen.items():
            if code == "DIALECT-REDCAP-EXTENSIONS" and not self.strict:
                continue
            deviation = DEVIATIONS[code]
            times = f" ({count} times, the first here)" if count > 1 else ""
            self.findings.add(
                Finding(
                    "error" if self.strict else "note",
                    code,
                    f"{deviation.summary}{times}"
                    + (": not allowed by plain ODM 1.3.1" if self.strict else ": REDCap's dialect, accepted"),
                    line=line,
                    **where,
                    hint=deviation.explanation,
                    count=count,
                ),
                group=code,
            )
        self._seen.clear()
