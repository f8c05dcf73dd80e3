"""What one archive actually holds, and what no REDCap XML backup ever holds.

A green drill proves that what is *in* the archive comes back. It says nothing
about what was never in it, and the project XML leaves out things sites often
assume are backed up (users and their rights, the audit trail, the File
Repository). The report shows both lists per archive so nobody mistakes a
passed drill for a full backup.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.odm.model import DAG_FIELD, SURVEY_ID_FIELD, ProjectMetadata

#: Parts of a REDCap project that the project XML never contains (research §1.3, §5.3):
#: restoring from XML alone loses them, whatever the drill says.
NEVER_IN_XML = (
    ("User accounts and user-rights assignments",
     "who may see and change what; re-create users and assign roles by hand after a restore"),
    ("Audit log (logging and data history)",
     "the who/when/what of every change; keep REDCap's database backups for it"),
    ("File Repository",
     "documents uploaded under File Repository; back them up separately"),
    ("API tokens",
     "new tokens must be issued after a restore; integrations break until then"),
    ("Survey invitations, participant lists and response metadata",
     "invitation log, return codes and participant identifiers"),
    ("External module settings",
     "module configuration lives outside the project XML"),
    ("Record locking, e-signatures and Data Resolution Workflow history",
     "lock/sign status and query threads are not exported"),
)


@dataclass(frozen=True)
class ArchiveFacts:
    """What a pass over the records found (the metadata alone cannot tell)."""

    records: int = 0
    files: int = 0  # ItemDataBase64Binary values
    dag_assignments: int = 0  # records with a redcap_data_access_group value
    survey_values: int = 0  # survey timestamps / identifiers with a value

    def to_dict(self) -> dict[str, int]:
        return {"records": self.records, "files": self.files, "dag_assignments": self.dag_assignments,
                "survey_values": self.survey_values}


@dataclass(frozen=True)
class Section:
    name: str
    present: bool
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "present": self.present, "detail": self.detail}


@dataclass(frozen=True)
class Coverage:
    sections: tuple[Section, ...]
    #: (name, why it matters): the same for every archive, listed so it is never forgotten.
    never: tuple[tuple[str, str], ...] = NEVER_IN_XML

    def to_dict(self) -> dict[str, object]:
        return {"sections": [s.to_dict() for s in self.sections],
                "never_in_xml": [{"name": n, "detail": d} for n, d in self.never]}

    @classmethod
    def from_dict(cls, data: dict) -> Coverage:
        return cls(tuple(Section(s["name"], bool(s["present"]), s.get("detail", "")) for s in data.get("sections", ())),
                   tuple((n["name"], n.get("detail", "")) for n in data.get("never_in_xml", ())) or NEVER_IN_XML)


# (section name, GlobalVariables group tags that hold it)
_GROUPS = (
    ("Data Access Groups (definitions)", ("DataAccessGroupsGroup",)),
    ("Survey settings", ("SurveysGroup",)),
    ("Automated survey invitations", ("SurveysSchedulerGroup",)),
    ("Survey queue", ("SurveysQueueGroup",)),
    ("User roles (definitions, not assignments)", ("UserRolesGroup", "UserRoles2Group")),
    ("Reports", ("ReportsGroup",)),
    ("Report folders", ("ReportsFoldersGroup",)),
    ("Data quality rules", ("DataQualityRulesGroup",)),
    ("Alerts and notifications", ("AlertsGroup",)),
    ("Record dashboards", ("RecordDashboardsGroup",)),
    ("Project dashboards", ("ProjectDashboardsGroup", "ProjectDashboardsFoldersGroup")),
    ("Form display logic", ("FormDisplayLogicConditionsGroup",)),
    ("Multi-language management", ("MultilanguageSettingsGroup",)),
    ("e-Consent and PDF snapshots", ("EconsentGroup", "EconsentFormsGroup", "PdfSnapshotsGroup")),
    ("Randomization set-up", ("RandomizationGroup",)),
    ("Descriptive popups", ("DescriptivePopupsGroup",)),
)


def _rows(meta: ProjectMetadata, tags: tuple[str, ...]) -> int:
    return sum(len(g.rows) for g in meta.groups if g.tag in tags)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def coverage(meta: ProjectMetadata, facts: ArchiveFacts) -> Coverage:
    """The sections ``meta``/``facts`` show the archive holds (present) or lacks."""
    sections = [
        Section("Project settings", bool(meta.settings), _plural(len(meta.settings), "setting")),
        Section("Instruments and fields", bool(meta.fields),
                f"{_plural(len(meta.forms), 'instrument')}, {_plural(len(meta.fields), 'field')}"),
        Section("Arms and events", bool(meta.events),
                f"{_plural(len(meta.arms), 'arm')}, {_plural(len(meta.events), 'event')}" if meta.events
                else "classic project (one implicit event)"),
        Section("Repeating instruments and events", meta.has_repeating,
                _plural(len(meta.repeating_forms) + len(meta.repeating_events), "repeating setting")),
        Section("Records", facts.records > 0, _plural(facts.records, "record")),
        Section("File upload contents", facts.files > 0,
                _plural(facts.files, "file") if facts.files else
                "no embedded files (exported without exportFiles, or none uploaded)"),
        Section("Descriptive-field attachments", any(f.attachment for f in meta.fields),
                _plural(sum(1 for f in meta.fields if f.attachment), "attachment")),
        Section("Missing data codes", bool(meta.missing_data_codes), _plural(len(meta.missing_data_codes), "code")),
    ]
    for name, tags in _GROUPS:
        n = _rows(meta, tags)
        sections.append(Section(name, n > 0, _plural(n, "row")))
    mycap = sum(len(g.rows) for g in meta.groups if g.tag.lower().startswith("mycap"))
    sections.append(Section("MyCap", mycap > 0, _plural(mycap, "row")))
    dag_column = DAG_FIELD in meta.pseudo_fields
    sections.append(Section("DAG assignments of records", facts.dag_assignments > 0,
                            _plural(facts.dag_assignments, "record") if dag_column
                            else "not exported (exportDataAccessGroups was off)"))
    survey_columns = SURVEY_ID_FIELD in meta.pseudo_fields or any(p.endswith("_timestamp") for p in meta.pseudo_fields)
    sections.append(Section("Survey timestamps and identifiers", facts.survey_values > 0,
                            _plural(facts.survey_values, "value") if survey_columns
                            else "not exported (exportSurveyFields was off)"))
    return Coverage(tuple(sections))
