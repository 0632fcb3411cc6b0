"""Operator and devnet tooling of mev-pipeline: the `mev-bot` CLI, `make run`'s stack,
config checks, status, control, dry run, key rotation and the local devnet. Each module owns
one command family; cli.py only parses and dispatches. Services never import this package
(tests/unit/test_package_layout.py): the runtime they share is `mev_common`."""
