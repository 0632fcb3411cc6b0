"""Exact integer AMM math."""
