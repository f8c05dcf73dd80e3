"""Turn libxml2's schema-validation errors into findings people can act on.

Each libxml2 error keeps its own message (namespaces shortened to ``redcap:``)
and gains a stable code, a readable path and a plain-English hint. Codes are
grouped by what the user has to do, not by libxml2's internal error numbers:

========  ==========================================================
XSD001    an element is not allowed here (wrong place, order or name)
XSD002    an attribute is not allowed on this element
XSD003    a required attribute is missing
XSD004    a value is not allowed by its type (empty OID, bad date, …)
XSD005    a value that must be unique is repeated
XSD006    not an ODM 1.3.1 element at all (wrong namespace or name)
XSD007    text where the element allows none
XSD000    any other schema error
========  ==========================================================
"""

from __future__ import annotations

from lxml import etree

from harness.odm.stream import ODM_NS, REDCAP_NS
from harness.schema.findings import Finding
from harness.schema.paths import located, resolve

_CODES = {
    "SCHEMAV_ELEMENT_CONTENT": "XSD001",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_4": "XSD001",
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1": "XSD002",
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_2": "XSD002",
    "SCHEMAV_CVC_COMPLEX_TYPE_4": "XSD003",
    "SCHEMAV_CVC_IDC": "XSD005",
    "SCHEMAV_CVC_ELT_1": "XSD006",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_1": "XSD007",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_3": "XSD007",
}
_VALUE_ERRORS = ("VALID", "SCHEMAV_CVC_ATTRIBUTE", "SCHEMAV_CVC_TYPE", "SCHEMAV_CVC_ELT_")

_HINTS = {
    "XSD001": "this element is out of place: ODM 1.3.1 fixes which elements may appear inside which, and in "
              "what order",
    "XSD002": "ODM 1.3.1 does not define this attribute here; check its spelling and namespace",
    "XSD003": "add the attribute; ODM 1.3.1 requires it",
    "XSD004": "the value does not fit the attribute's type in ODM 1.3.1",
    "XSD005": "two siblings share a value that ODM 1.3.1 requires to be unique (usually an OID)",
    "XSD006": "not an element of ODM 1.3.1 (namespace http://www.cdisc.org/ns/odm/v1.3); check the namespace "
              "declaration and the element name",
    "XSD007": "this element may not hold text",
    "XSD000": "the document does not follow the ODM 1.3.1 schema here",
}

_SHORT = (("{%s}" % ODM_NS, ""), ("{%s}" % REDCAP_NS, "redcap:"))


def shorten(message: str) -> str:
    for long, short in _SHORT:
        message = message.replace(long, short)
    return message.strip()


def code_for(type_name: str) -> str:
    code = _CODES.get(type_name)
    if code:
        return code
    if any(part in type_name for part in _VALUE_ERRORS):
        return "XSD004"
    return "XSD000"


def hint_for(code: str, message: str, profile: str) -> str:
    if "redcap:" in message and profile == "strict":
        return ("a REDCap extension, which plain ODM 1.3.1 has no place for; REDCap always writes these — "
                "validate with --profile redcap to check them by type instead")
    if code == "XSD004":
        if "minLength" in message and "'0'" in message:
            return "an empty value where ODM 1.3.1 requires at least one character (OIDs, names, keys)"
        if "'{http://www.w3.org/2001/XMLSchema}date'" in message or "atomic type 'date'" in message:
            return "dates must be written YYYY-MM-DD"
        if "base64Binary" in message:
            return "the embedded file is not valid base64: the archive is damaged or was edited"
        if "enumeration" in message:
            return "the value is not one of those listed as allowed"
    return _HINTS[code]


def findings_from_log(
    error_log: etree._ListErrorLog,
    top: etree._Element,
    *,
    profile: str,
    stand_in: etree._Element | None = None,
) -> list[Finding]:
    """Findings for the errors of one ``schema.validate(top)`` call.

    ``stand_in`` is the real element when ``top`` is an attributes-only copy of
    it (the ``<ODM>`` root and ``<ClinicalData>`` start, validated before their
    children exist).
    """
    out = []
    for entry in error_log:
        element = stand_in if stand_in is not None else resolve(top, entry.path)
        message = shorten(entry.message)
        code = code_for(entry.type_name)
        line = entry.line or (element.sourceline if element is not None else None)
        out.append(
            Finding(
                "error",
                code,
                message,
                line=line or None,
                column=entry.column or None,
                **(located(element) if element is not None else {}),
                hint=hint_for(code, message, profile),
            )
        )
    return out
