"""Shared runtime of the mev-pipeline services."""
