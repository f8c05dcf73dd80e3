"""redcap-drill's pytest plugin (entry point ``pytest11: redcap_drill``).

Placeholder while the drill lands: it must do nothing for runs that do not use
it, and this project's own test suite loads it through the entry point too.
"""
