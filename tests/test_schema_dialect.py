"""The two profiles: every real REDCap export is valid REDCap ODM, and none is plain ODM 1.3.1.

``strict`` is CDISC's schema as published. ``redcap`` is derived from it in
memory: REDCap's extensions are typed through CDISC's own extension hooks,
unknown ``redcap:`` names are warnings, and each known REDCap habit that 1.3.1
forbids is a named note (an error under ``strict``).
"""

from __future__ import annotations

import io

import pytest
from lxml import etree

from harness.errors import OdmError
from harness.schema import DEVIATIONS, load_schema, validate
from harness.schema.dialect import REDCAP_XSD, derive_redcap
from harness.schema.locate import locate_schema
from tests.corpus import EXAMPLE, corpus_params, manifest

# The XSD is CDISC's and not in this repository: without ../shared or the user cache these skip.
pytestmark = pytest.mark.odm_schema

HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"{ns} ODMVersion="1.3.1" FileOID="000-00-0000" '
    'FileType="Snapshot" CreationDateTime="2025-03-14T09:26:53" SourceSystem="REDCap" SourceSystemVersion="15.7.6">\n'
)
RC = ' xmlns:redcap="https://projectredcap.org"'

# A plain ODM 1.3.1 project (valid under strict); the deviation tests change one thing in it.
STUDY = (
    '<Study OID="Project.P"><GlobalVariables><StudyName>P</StudyName><StudyDescription>d</StudyDescription>'
    "<ProtocolName>P</ProtocolName>{globals}</GlobalVariables>"
    '<MetaDataVersion OID="Metadata.P" Name="P"{mdv}>'
    '<Protocol><StudyEventRef StudyEventOID="Event.event_1_arm_1" OrderNumber="1" Mandatory="No"/></Protocol>'
    '<StudyEventDef OID="Event.event_1_arm_1" Name="Event 1" Type="Common" Repeating="No">'
    '<FormRef FormOID="Form.f" OrderNumber="1" Mandatory="No"/></StudyEventDef>'
    '<FormDef OID="Form.f" Name="F" Repeating="No"><ItemGroupRef ItemGroupOID="f.record_id" Mandatory="No"/></FormDef>'
    '<ItemGroupDef OID="f.record_id" Name="{group_name}" Repeating="No">'
    '<ItemRef ItemOID="record_id" Mandatory="No"/><ItemRef ItemOID="ok" Mandatory="No"/>'
    '<ItemRef ItemOID="upload" Mandatory="No"/></ItemGroupDef>'
    '<ItemDef OID="record_id" Name="record_id" DataType="text" Length="999"{itemdef}/>'
    '<ItemDef OID="ok" Name="ok" DataType="boolean" Length="1"><CodeListRef CodeListOID="ok.choices"/></ItemDef>'
    '<ItemDef OID="upload" Name="upload" DataType="text" Length="999"/>'
    '<CodeList OID="ok.choices" Name="ok" DataType="{cl_type}">'
    '<CodeListItem CodedValue="1"><Decode><TranslatedText>Yes</TranslatedText></Decode></CodeListItem>'
    "</CodeList></MetaDataVersion></Study>\n"
)
CLINICAL = ('<ClinicalData StudyOID="Project.P" MetaDataVersionOID="Metadata.P">'
            '<SubjectData SubjectKey="1">{body}</SubjectData></ClinicalData>\n')
EVENT = '<StudyEventData StudyEventOID="Event.event_1_arm_1" StudyEventRepeatKey="1">{form}</StudyEventData>'
FORM = ('<FormData FormOID="Form.f" FormRepeatKey="1"><ItemGroupData ItemGroupOID="{group_oid}" ItemGroupRepeatKey="1">'
        '<ItemData ItemOID="record_id" Value="1"/>{more}</ItemGroupData></FormData>')
B64 = '<ItemDataBase64Binary ItemOID="upload">aGVsbG8=</ItemDataBase64Binary>'


def document(*, ns: str = "", globals: str = "", mdv: str = "", itemdef: str = "", group_name: str = "F",
             cl_type: str = "text", group_oid: str = "f.record_id", more: str = "", classic: bool = False) -> bytes:
    form = FORM.format(group_oid=group_oid, more=more)
    body = form if classic else EVENT.format(form=form)
    text = (HEAD.format(ns=ns) + STUDY.format(globals=globals, mdv=mdv, itemdef=itemdef, group_name=group_name,
                                              cl_type=cl_type) + CLINICAL.format(body=body) + "</ODM>")
    return text.encode()


def check(data: bytes, profile: str):
    return validate(io.BytesIO(data), profile=profile, name="doc.xml", max_messages=100)


def schema_findings(result):
    """What the schema and dialect passes found (the template is plain ODM, so no REDCap data checks)."""
    return [f for f in result.findings if f.code != "SEM-NOT-REDCAP-METADATA"]


def test_the_plain_template_is_valid_under_both_profiles():
    for profile in ("strict", "redcap"):
        result = check(document(), profile)
        assert result.valid and schema_findings(result) == [], (profile, result.findings)
        assert result.codes() == {"SEM-NOT-REDCAP-METADATA"}


# -- the corpus -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", corpus_params())
def test_every_real_export_is_valid_under_the_redcap_profile(path):
    result = validate(path, profile="redcap")
    assert result.valid, [f.to_dict() for f in result.findings if f.severity == "error"]
    assert result.counts["error"] == 0
    notes = {f.code for f in result.findings if f.severity == "note"}
    assert notes <= set(DEVIATIONS), notes
    # Nothing in these files is unknown to redcap.xsd.
    assert not {f.code for f in result.findings if f.code.startswith("REDCAP-UNKNOWN")}
    expected = manifest().get(path.name)
    if expected and "classic" in expected["features"] and expected["has_clinical_data"] == "y":
        assert "DIALECT-CLASSIC-FORMDATA" in notes


@pytest.mark.parametrize("path", corpus_params())
def test_no_real_export_is_plain_odm_1_3_1(path):
    result = validate(path, profile="strict", max_messages=500)
    assert not result.valid
    # The plain-1.3.1 failure itself, in libxml2's words: REDCap's attributes have no place there.
    attribute_errors = [f for f in result.findings if f.code == "XSD002"]
    assert attribute_errors and "The attribute 'redcap:" in attribute_errors[0].message
    assert "is not allowed" in attribute_errors[0].message
    assert "--profile redcap" in attribute_errors[0].hint
    [extensions] = result.by_code("DIALECT-REDCAP-EXTENSIONS")
    assert extensions.severity == "error" and extensions.count > 10


def test_the_derived_schema_accepts_whole_real_documents_too():
    """Streaming validates subtrees; the same derived schema accepts a whole REDCap document."""
    if not EXAMPLE.is_file():
        pytest.skip(f"research example not found at {EXAMPLE}")
    whole = etree.parse(str(EXAMPLE))
    assert load_schema("redcap").validate(whole)
    assert not load_schema("strict").validate(whole)


# -- each known deviation: a note under redcap, an error under strict -----------------------------------
DEVIATION_DOCS = {
    "DIALECT-CLASSIC-FORMDATA": (dict(classic=True), "XSD001", "Element 'FormData': This element is not expected"),
    "DIALECT-CODELIST-BOOLEAN": (dict(cl_type="boolean"), "XSD004", "[facet 'enumeration'] The value 'boolean'"),
    "DIALECT-EMPTY-ITEMGROUPOID": (dict(group_oid=""), "XSD004", "attribute 'ItemGroupOID': [facet 'minLength']"),
    "DIALECT-EMPTY-ITEMGROUPDEF-NAME": (dict(group_name=""), "XSD004", "attribute 'Name': [facet 'minLength']"),
    "DIALECT-MIXED-ITEMDATA": (dict(more=B64), "XSD001", "Element 'ItemDataBase64Binary': This element is not expected"),
    "DIALECT-REDCAP-EXTENSIONS": (dict(ns=RC, mdv=' redcap:RecordIdField="record_id"'), "XSD002",
                                  "The attribute 'redcap:RecordIdField' is not allowed"),
}


@pytest.mark.parametrize("code", list(DEVIATION_DOCS))
def test_each_known_deviation_is_a_note_under_redcap(code):
    kwargs, _, _ = DEVIATION_DOCS[code]
    result = check(document(**kwargs), "redcap")
    assert result.valid
    if code == "DIALECT-REDCAP-EXTENSIONS":
        assert schema_findings(result) == []  # known extensions are simply REDCap ODM under this profile
        return
    [finding] = schema_findings(result)
    assert (finding.severity, finding.code) == ("note", code)
    assert finding.hint == DEVIATIONS[code].explanation and finding.path.startswith("/ODM/")


@pytest.mark.parametrize("code", list(DEVIATION_DOCS))
def test_each_known_deviation_fails_plain_odm_under_strict(code):
    kwargs, xsd_code, libxml2_says = DEVIATION_DOCS[code]
    result = check(document(**kwargs), "strict")
    assert not result.valid
    assert result.by_code(code)[0].severity == "error"
    assert any(f.code == xsd_code and libxml2_says in f.message for f in result.findings), result.findings


def test_deviations_are_counted_with_their_first_place():
    data = document(classic=True).replace(b"</ClinicalData>", b'<SubjectData SubjectKey="2"><FormData FormOID="Form.f"/>'
                                                              b"</SubjectData></ClinicalData>")
    [note] = check(data, "redcap").by_code("DIALECT-CLASSIC-FORMDATA")
    assert note.count == 2 and 'SubjectData[@SubjectKey="1"]' in note.path


# -- REDCap's extensions are typed ---------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "says"), [
    (dict(itemdef=' redcap:FieldType="textbox"'), "attribute 'redcap:FieldType': [facet 'enumeration']"),
    (dict(itemdef=' redcap:Variable="has space"'), "attribute 'redcap:Variable'"),
    (dict(globals="<redcap:RecordAutonumberingEnabled>yes</redcap:RecordAutonumberingEnabled>"),
     "Element 'redcap:RecordAutonumberingEnabled'"),
    (dict(globals="<redcap:Purpose>7</redcap:Purpose>"), "Element 'redcap:Purpose'"),
    (dict(globals='<redcap:RepeatingInstrumentsAndEvents><redcap:RepeatingInstruments>'
                  '<redcap:RepeatingInstrument redcap:UniqueEventName="event_1_arm_1"/>'
                  '</redcap:RepeatingInstruments></redcap:RepeatingInstrumentsAndEvents>'),
     "The attribute 'redcap:RepeatInstrument' is required but missing"),
    (dict(globals="<redcap:DataAccessGroupsGroup><redcap:Surveys/></redcap:DataAccessGroupsGroup>"),
     "Element 'redcap:Surveys': This element is not expected"),
])
def test_known_redcap_extensions_are_checked_by_type(kwargs, says):
    result = check(document(ns=RC, **kwargs), "redcap")
    assert not result.valid
    [error] = [f for f in result.findings if f.severity == "error"]
    assert says in error.message and error.code.startswith("XSD")
    assert error.path.startswith("/ODM/Study")


def test_unknown_redcap_attributes_and_elements_are_accepted_with_a_warning():
    data = document(ns=RC, itemdef=' redcap:FutureFeature="on"',
                    globals="<redcap:BrandNewSetting>1</redcap:BrandNewSetting><redcap:Purpose>1</redcap:Purpose>")
    result = check(data, "redcap")
    assert result.valid
    [attribute] = result.by_code("REDCAP-UNKNOWN-ATTRIBUTE")
    assert "redcap:FutureFeature on ItemDef" in attribute.message and attribute.severity == "warning"
    assert attribute.path.endswith('ItemDef[@OID="record_id"]')
    [element] = result.by_code("REDCAP-UNKNOWN-ELEMENT")
    assert "redcap:BrandNewSetting inside GlobalVariables" in element.message


def test_an_unknown_redcap_element_is_one_warning_however_much_it_holds():
    data = document(ns=RC, globals='<redcap:FutureGroup><redcap:Future redcap:flag="1" a="b"/></redcap:FutureGroup>')
    result = check(data, "redcap")
    assert result.valid
    assert [f.code for f in schema_findings(result)] == ["REDCAP-UNKNOWN-ELEMENT"]


def test_a_known_redcap_name_in_the_wrong_place_is_a_warning():
    result = check(document(ns=RC, itemdef=' redcap:FormName="f"'), "redcap")
    [finding] = result.by_code("REDCAP-UNKNOWN-ATTRIBUTE")
    assert "redcap:FormName on ItemDef" in finding.message


def test_the_derivation_keeps_the_pre_include_hook_free_of_wildcards():
    foundation = etree.parse(str(locate_schema().foundation)).getroot()
    derived = derive_redcap(foundation)
    xs = "{http://www.w3.org/2001/XMLSchema}"
    groups = {g.get("name"): g for g in derived.iterchildren(xs + "group")}
    assert len(groups["MetaDataVersionPreIncludeElementExtension"].find(xs + "sequence")) == 0
    assert groups["MetaDataVersionElementExtension"].find(f"{xs}sequence/{xs}choice/{xs}any") is not None
    assert any(el.get("schemaLocation") == REDCAP_XSD.as_uri() for el in derived.iterchildren(xs + "import"))


def test_each_profile_is_compiled_once_per_process():
    assert load_schema("redcap") is load_schema("redcap")
    assert load_schema("strict") is not load_schema("redcap")


# -- what must still fail under redcap: the two malformed upstream cases ---------------------------------
def test_a_truncated_export_cannot_be_validated():
    data = document(ns=RC)
    data = data[: data.index(b"</SubjectData>")]  # cut off after a complete tag, as a dropped connection does
    with pytest.raises(OdmError, match="truncated"):
        check(data, "redcap")


def test_the_odm_namespace_written_with_https_is_not_odm():
    data = document().replace(b'xmlns="http://www.cdisc.org/ns/odm/v1.3"', b'xmlns="https://www.cdisc.org/ns/odm/v1.3"')
    with pytest.raises(OdmError, match="not ODM in namespace http://www.cdisc.org/ns/odm/v1.3"):
        check(data, "redcap")
