"""REDCap's API errors: raised by the backend, formatted in exactly one place.

Each class carries REDCap's HTTP status and its exact English text
(``LanguageUpdater/English.ini`` of 15.7.6) as class attributes, the way
moto's ``ServiceException`` subclasses do. ``format_error`` is the only code
that turns one into bytes, following ``RestUtility::sendResponse``: the body
shape follows ``returnFormat``, falling back to ``format``, then to XML.
"""

from __future__ import annotations

import json


class ApiError(Exception):
    """Base of every error the sandbox answers with; never a Python bug."""

    status = 400
    message = ""

    def __init__(self, message: str | None = None):
        self.message = message if message is not None else type(self).message
        super().__init__(self.message)


# -- transport and authentication (RestUtility / API/index.php) ---------------
class BadRequest(ApiError):
    """A 400 whose text the caller supplies (handler-specific REDCap messages)."""

    status = 400
    message = ("There were errors with your request. If you are sending data, then it might be "
               "due to the data being misformatted. ")


class InvalidToken(ApiError):
    status = 403
    message = "You do not have permissions to use the API"


class SuperTokenRequired(ApiError):
    """api_120: create project (or version) without a valid 64-char super token."""

    status = 403
    message = ("You do not have permissions to use the API 'Create Project' method. You must have been "
               "granted a 64-character Super API Token from a REDCap administrator in order to utilize "
               "this method.")


class MethodNotAllowed(ApiError):
    status = 501
    message = "The requested method is not implemented."


class NotFound(ApiError):
    status = 404
    message = "The requested URI was not found."


class InvalidContent(ApiError):
    status = 400
    message = 'The value of the parameter "content" is not valid'


class InvalidAction(ApiError):
    status = 400
    message = 'The value of the parameter "action" is not valid'


class NotImplementedInSandbox(ApiError):
    """A real REDCap call the sandbox does not model.

    The client sees REDCap's own "action not valid" error (never a fake
    success); the server log says "not implemented in sandbox" so the gap
    shows up, as moto's ``NotYetImplemented`` does.
    """

    status = 400
    message = 'The value of the parameter "action" is not valid'


class NoExportRights(ApiError):
    status = 403
    message = "You do not have API Export privileges"


class NoImportRights(ApiError):
    status = 403
    message = "You do not have API Import/Update privileges"


class ServerError(ApiError):
    status = 500
    message = "The server encountered an error processing your request."


# -- create project (API/project/import.php, ODM::validateOdmInitial) --------
class ProjectAttributesMissing(ApiError):
    message = ("One or more components are missing in your input data. The following attributes are "
               "required: project_title, purpose. Also, 'purpose' must have a value of 0, 1, 2, 3, or 4.")


class PurposeOtherMissing(ApiError):
    message = ("You must provide some text for 'purpose_other' since you specified 'purpose' as '1' "
               "(Other).")


class DataNotInFormat(ApiError):
    message = "The data is not in the specified format."


class OneProjectAtATime(ApiError):
    message = ("Only one project can be created at a time using the API 'Create Project' method. It "
               "appears that you have provided attributes for more than one project in the API request.")


class InvalidOdm(ApiError):
    """data_import_tool_240."""

    message = ("The XML file could not be processed because it appears not to be valid XML or is missing "
               "certain basic components.")


# -- data and design errors --------------------------------------------------
class ClassicArms(ApiError):
    message = "You cannot export arms for classic projects"


class ClassicEvents(ApiError):
    message = "You cannot export events for classic projects"


class ClassicFormEventMapping(ApiError):
    message = "You cannot export form/event mappings for classic projects"


class NoRepeatingSetup(ApiError):
    message = ("You cannot export repeating instruments and events because the project does not contain "
               "any repeating instruments and events")


class RecordsNotArray(ApiError):
    """api_136."""

    message = ("Incorrect format for 'records' parameter. It must be passed as an array, even if it only "
               "contains a single record name.")


class RecordsEmpty(ApiError):
    """api_137."""

    message = "No records were provided. You must provide at least one record name in the 'records' parameter."


class DeletePrivileges(ApiError):
    message = ("Insufficient user privileges: You must have 'API Import/Update' privileges and 'Delete "
               "Records' privileges in the project in order to utilize this API method.")


class ImportDataMalformed(ApiError):
    """The ``data`` parameter of an import cannot be decoded."""

    message = "The data being imported is not formatted correctly."


class NoDataProvided(ApiError):
    message = "No data was provided."


# -- formatting --------------------------------------------------------------
XML_PROLOG = '<?xml version="1.0" encoding="UTF-8" ?>'
CONTENT_TYPES = {"json": "application/json", "csv": "text/csv", "xml": "text/xml"}


def php_json(value) -> str:
    """``json_encode`` as PHP does it by default: ``\\/`` and ``\\uXXXX`` escapes, no spaces.

    ``/`` only ever occurs inside JSON strings, so escaping it in the encoded
    text is exact.
    """
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")


def format_error(error: ApiError, return_format: str) -> tuple[int, str, bytes]:
    """(status, content type, body) for an error, shaped by ``returnFormat``.

    ``return_format`` is already normalised (json|csv|xml, see params.py).
    """
    msg = error.message
    if return_format == "json":
        body = msg if msg.startswith('{"error"') else php_json({"error": msg})
    elif return_format == "csv":
        body = f"ERROR: {msg}"
    else:
        # REDCap does not escape the message: a '<' in it yields broken XML, as it does there.
        inner = msg if msg.startswith("<error>") else f"<error>{msg}</error>"
        body = f"{XML_PROLOG}<hash>{inner}</hash>"
        return_format = "xml"
    return error.status, f"{CONTENT_TYPES[return_format]}; charset=utf-8", body.encode("utf-8")
