"""Test ports come from below the kernel's ephemeral range: a port the OS picks from that
range can be taken, once released, as the source port of any outgoing connection before the
service binds it (CI: detect's health port taken so, uvicorn exited 3)."""

from __future__ import annotations

import socket

from mev_ops.nats_server import _ephemeral_range, free_port


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    low, high = _ephemeral_range()
    assert (low, high) == tuple(
        int(v) for v in open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
    )
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == 500
    assert all(20000 <= p < low for p in ports)
    for port in ports[:20]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_handed_out() -> None:
    held = []
    try:
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", free_port()))
            held.append(s)
        taken = {s.getsockname()[1] for s in held}
        assert all(free_port() not in taken for _ in range(500))
    finally:
        for s in held:
            s.close()
