"""Chain access: RPC pool, ABI codecs, transaction helpers."""
