"""redcap-drill: prove that REDCap project-XML backups can be restored."""

__version__ = "0.1.0"
