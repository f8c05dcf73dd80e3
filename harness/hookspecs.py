"""Hooks redcap-drill's pytest plugin calls, so a site can adapt drills without forking them.

Implement them in a ``conftest.py`` beside your suites (or in your own plugin):

    def pytest_redcap_drill_compare_options(config, archive):
        return {"max_listed": 50}

    def pytest_redcap_drill_finished(config, result):
        send_to_monitoring(result.project_key, result.outcome, result.rto_seconds)
"""

from __future__ import annotations

from pluggy import HookspecMarker

hookspec = HookspecMarker("pytest")


@hookspec(firstresult=True)
def pytest_redcap_drill_make_target(config, kind, options):
    """Return a started-on-enter `harness.targets.Target` for ``kind``, or None to use the built-in one.

    ``options`` holds the keyword options the plugin would pass to
    ``harness.targets.get(kind, **options)``. The first non-None result wins.
    This is how a target that is not built in (a site's own REDCap pool)
    plugs into the suites.
    """


@hookspec
def pytest_redcap_drill_compare_options(config, archive):
    """Return a dict of extra `harness.compare.CompareOptions` fields for this archive, or None.

    ``archive`` is the `harness.pytest_plugin.ArchiveRef` about to be drilled.
    Results from every implementation are merged (later ones win). A
    ``record_ids`` entry ("auto", "mask", "show") sets this archive's record ID
    policy for the whole drill, validation findings included.
    """


@hookspec
def pytest_redcap_drill_finished(config, result):
    """Called with each `harness.drill.DrillResult`, in the process that ran the drill.

    Under pytest-xdist that is a worker; the report itself is written on the
    controller from the results the workers send back.
    """


@hookspec(firstresult=True)
def pytest_redcap_drill_report(config, report):
    """Called on the controller with the `harness.reports.ReportData` just before it is written.

    Return a replacement ReportData (e.g. with extra compliance controls via
    ``dataclasses.replace``) or None to keep it. The first non-None result wins.
    """
