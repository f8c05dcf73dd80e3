"""The drill suites. This flag is what activates redcap-drill's pytest plugin for them.

Every test here asserts on one stage of the archive's cached `DrillResult`
(fixture ``drill_result``): an archive is drilled once, by the first test
that needs it, however many tests look at it.
"""

REDCAP_DRILL_SUITE = True
