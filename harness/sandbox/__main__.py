"""``python -m harness.sandbox``: the same as ``redcap-drill sandbox serve``."""

from harness.commands.sandbox import main

raise SystemExit(main())
