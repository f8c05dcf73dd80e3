"""One module per ``redcap-drill`` subcommand: ``register(subparsers)`` and ``run(args)``."""
