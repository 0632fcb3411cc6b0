"""Operator commands of `mev-bot` (control, status, dry run) and the KV keys they share with
the runtime. Each module owns one command family; cli.py only parses and dispatches."""
