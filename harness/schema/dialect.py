"""The two validation profiles, compiled once per process.

``strict``  CDISC's ODM 1.3.1 schema exactly as published. No REDCap export
            passes it: REDCap's extensions and a handful of habits are not 1.3.1.
``redcap``  (default) the same schema, derived *in memory* at load time so that
            what REDCap legitimately writes is valid, and nothing else is:

  * CDISC's own extension hooks (every ``…AttributeExtension`` attribute group
    and ``…ElementExtension`` model group) get a *lax* wildcard for the REDCap
    namespace. Lax means: validated against ``redcap.xsd`` when declared there
    (typed), skipped when not (unknown ``redcap:`` names are reported as
    warnings by ``deviations.py`` instead). ``MetaDataVersionPreIncludeElementExtension``
    is left alone: a wildcard there and in ``MetaDataVersionElementExtension``
    makes the content model non-deterministic and libxml2 refuses the schema.
  * each known REDCap habit that 1.3.1 forbids (`DEVIATIONS`) is allowed by the
    smallest type edit that admits it; ``deviations.py`` reports every
    occurrence as a named note (an error under ``strict``).

Nothing of CDISC's is written to disk or changed on disk; the official files are
hash-checked by ``locate.py`` before they are read.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from harness.errors import SchemaError, UsageError
from harness.schema.locate import FOUNDATION, SchemaLocation, locate_schema

PROFILES = ("redcap", "strict")
DEFAULT_PROFILE = "redcap"

REDCAP_NS = "https://projectredcap.org"
REDCAP_XSD = Path(__file__).with_name("redcap.xsd")

XS_NS = "http://www.w3.org/2001/XMLSchema"
_XS = "{%s}" % XS_NS

# The one extension hook that must stay empty (see the module docstring).
_NO_WILDCARD = "MetaDataVersionPreIncludeElementExtension"


@dataclass(frozen=True)
class Deviation:
    """A known way REDCap's project XML departs from plain ODM 1.3.1."""

    code: str
    summary: str
    #: Why it happens and why it is harmless to a restore (shown as the hint).
    explanation: str


DEVIATIONS: dict[str, Deviation] = {
    d.code: d
    for d in (
        Deviation(
            "DIALECT-CLASSIC-FORMDATA",
            "FormData directly inside SubjectData (classic project layout)",
            "REDCap writes classic (non-longitudinal) projects without StudyEventData; ODM 1.3.1 requires "
            "StudyEventData around FormData. REDCap's importer reads this layout as event_1_arm_1.",
        ),
        Deviation(
            "DIALECT-CODELIST-BOOLEAN",
            'CodeList DataType="boolean"',
            "REDCap uses boolean code lists for yesno, truefalse and each checkbox option; ODM 1.3.1 code "
            "lists allow only integer, float, text and string. The codes are still 0/1.",
        ),
        Deviation(
            "DIALECT-EMPTY-ITEMGROUPOID",
            'ItemGroupData with ItemGroupOID=""',
            "REDCap writes an empty ItemGroupOID when a data group starts at a field that does not start a "
            "metadata group (blank values are skipped); 1.3.1 requires an OID. Import ignores ItemGroupOID.",
        ),
        Deviation(
            "DIALECT-EMPTY-ITEMGROUPDEF-NAME",
            'ItemGroupDef with Name=""',
            "REDCap names a group after the section header of its first field, which is empty when that "
            "field is a checkbox without a header; 1.3.1 requires a non-empty Name. Import ignores it.",
        ),
        Deviation(
            "DIALECT-MIXED-ITEMDATA",
            "ItemDataBase64Binary and ItemData in one ItemGroupData",
            "REDCap puts uploaded files (ItemDataBase64Binary) next to ordinary ItemData of the same "
            "section; 1.3.1 allows only one kind per ItemGroupData. Import reads both.",
        ),
        Deviation(
            "DIALECT-REDCAP-EXTENSIONS",
            "redcap: elements and attributes",
            "REDCap keeps its project settings and field details in the https://projectredcap.org namespace; "
            "plain ODM 1.3.1 has no place for them. Validate with --profile redcap to check them by type.",
        ),
    )
}


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise UsageError(f"unknown validation profile {profile!r}; use one of: {', '.join(PROFILES)}")
    return profile


def load_schema(profile: str = DEFAULT_PROFILE, location: SchemaLocation | None = None) -> etree.XMLSchema:
    """The compiled schema for ``profile``; compiled once per process and folder."""
    check_profile(profile)
    location = location or locate_schema()
    return _compiled(profile, location.root)


@functools.cache
def _compiled(profile: str, root: Path) -> etree.XMLSchema:
    try:
        if profile == "strict":
            return etree.XMLSchema(_parse(root / "cdisc-odm-1.3.1" / "ODM1-3-1.xsd"))
        foundation = root / FOUNDATION
        derived = etree.ElementTree(derive_redcap(_parse(foundation).getroot()))
        # A URL inside the schema folder makes the foundation's "../core/*.xsd" imports resolve.
        derived.docinfo.URL = foundation.as_uri()
        return etree.XMLSchema(derived)
    except etree.XMLSchemaParseError as exc:
        raise SchemaError(
            f"the {profile!r} ODM schema does not compile ({exc}); this is a redcap-drill bug — "
            "please report it with `redcap-drill --version`"
        ) from exc


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)


def _parse(path: Path) -> etree._ElementTree:
    try:
        return etree.parse(str(path), parser=_parser())
    except (OSError, etree.XMLSyntaxError) as exc:
        raise SchemaError(f"cannot read schema file {path} ({exc}); re-run `redcap-drill schema install --force`") from exc


# -- the derivation: small, named edits of CDISC's foundation tree -------------------------------
def derive_redcap(foundation: etree._Element) -> etree._Element:
    """A copy of the foundation schema with REDCap's extensions plugged into CDISC's hooks."""
    root = _with_redcap_prefix(foundation)
    _import_redcap_schema(root)
    for group in _children(root, "attributeGroup"):
        if group.get("name", "").endswith("AttributeExtension"):
            etree.SubElement(group, _XS + "anyAttribute", namespace=REDCAP_NS, processContents="lax")
    for group in _children(root, "group"):
        name = group.get("name", "")
        if name.endswith("ElementExtension") and name != _NO_WILDCARD:
            choice = etree.SubElement(_only(group, "sequence"), _XS + "choice")
            if name == "SubjectDataElementExtension":
                # DIALECT-CLASSIC-FORMDATA: FormData straight under SubjectData.
                etree.SubElement(choice, _XS + "element", ref="FormData")
            etree.SubElement(choice, _XS + "any", namespace=REDCAP_NS, processContents="lax")
    # DIALECT-CODELIST-BOOLEAN
    etree.SubElement(_only(_named(root, "simpleType", "CLDataType"), "restriction"), _XS + "enumeration", value="boolean")
    # DIALECT-EMPTY-ITEMGROUPOID: only ItemGroupData's reference may be empty, not every oidref.
    _named_attribute(_named(root, "attributeGroup", "ItemGroupDataAttributeDefinition"), "ItemGroupOID").set("type", "value")
    # DIALECT-EMPTY-ITEMGROUPDEF-NAME
    _named_attribute(_named(root, "attributeGroup", "ItemGroupDefAttributeDefinition"), "Name").set("type", "text")
    # DIALECT-MIXED-ITEMDATA: ItemData and the typed ItemData* elements in any mix and order.
    igd = _only(_named(root, "complexType", "ODMcomplexTypeDefinition-ItemGroupData"), "sequence")
    either = _only(igd, "choice")
    mixed = etree.Element(_XS + "choice", minOccurs="0", maxOccurs="unbounded")
    etree.SubElement(mixed, _XS + "element", ref="ItemData")
    for star in _only(_named(root, "group", "ItemDataStarGroup"), "sequence"):
        etree.SubElement(mixed, _XS + "element", ref=star.get("ref"))
    igd.replace(either, mixed)
    return root


def _with_redcap_prefix(schema: etree._Element) -> etree._Element:
    # lxml cannot add a namespace declaration to an existing element, so rebuild the root.
    nsmap = dict(schema.nsmap)
    nsmap["redcap"] = REDCAP_NS
    root = etree.Element(schema.tag, attrib=dict(schema.attrib), nsmap=nsmap)
    root.text = schema.text
    root.extend(list(schema))
    return root


def _import_redcap_schema(root: etree._Element) -> None:
    imports = [i for i, child in enumerate(root) if child.tag == _XS + "import"]
    anchor = imports[-1] + 1 if imports else 0
    root.insert(anchor, etree.Element(_XS + "import", namespace=REDCAP_NS, schemaLocation=REDCAP_XSD.as_uri()))


def _children(root: etree._Element, kind: str):
    return root.iterchildren(_XS + kind)


def _named(root: etree._Element, kind: str, name: str) -> etree._Element:
    for child in _children(root, kind):
        if child.get("name") == name:
            return child
    raise SchemaError(f"the ODM foundation schema has no {kind} {name!r}; it is not ODM 1.3.1")


def _only(parent: etree._Element, kind: str) -> etree._Element:
    found = parent.find(_XS + kind)
    if found is None:
        raise SchemaError(f"unexpected shape of {parent.get('name')!r} in the ODM foundation schema")
    return found


def _named_attribute(group: etree._Element, name: str) -> etree._Element:
    for attr in group.iterchildren(_XS + "attribute"):
        if attr.get("name") == name:
            return attr
    raise SchemaError(f"the ODM foundation schema has no attribute {name!r} in {group.get('name')!r}")
