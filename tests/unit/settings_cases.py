"""Every invalid config test_settings checks, with the exact one-line errors it must yield."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FACTORY = "0x724412C00059bf7d6ee7d4a1d0D5cd4de3ea1C48"


def live_contracts(executor: str) -> dict[str, Any]:
    return {"executor": executor, "dexes": [{"name": "v2", "factory": FACTORY}]}


Mutation = Callable[[dict[str, Any]], object]

INVALID: list[tuple[str, Mutation, list[str]]] = [
    (
        "negative concurrency",
        lambda c: c.update(performance={"simulation_concurrency": -1}),
        ["performance.simulation_concurrency: got -1; expected a number >= 1"],
    ),
    (
        "negative victim trace reserve",
        lambda c: c.update(simulate={"victim_trace_reserve": -1}),
        ["simulate.victim_trace_reserve: got -1; expected a number >= 0"],
    ),
    (
        "unknown key at top level",
        lambda c: c.update(foo=1),
        [
            "foo: unknown key; expected one of chain, nats, services, performance, mempool, "
            "strategies, contracts, detect, simulate, submit, database, keys, logging, devnet"
        ],
    ),
    (
        "unknown key nested, misspelt",
        lambda c: c.update(performance={"simulaton_concurrency": 8}),
        ["performance.simulaton_concurrency: unknown key; did you mean simulation_concurrency?"],
    ),
    (
        "unknown key in a list item",
        lambda c: c["chain"]["rpc_endpoints"][0].update(bogus=1),
        [
            "chain.rpc_endpoints[0].bogus: unknown key; expected one of name, url, ws_url, "
            "rate_limit_rps, pool_size, timeout_s"
        ],
    ),
    (
        "float wei",
        lambda c: c["strategies"]["cyclic_arbitrage"].update(max_gas_price=1.5),
        [
            "strategies.cyclic_arbitrage.max_gas_price: got 1.5; expected an amount like "
            "'50 gwei', '0.01 ether' or an integer of wei (a float is not exact)"
        ],
    ),
    (
        "fraction of a wei",
        lambda c: c["strategies"]["cyclic_arbitrage"].update(min_profit="0.5 wei"),
        ["strategies.cyclic_arbitrage.min_profit: got '0.5 wei'; expected a whole number of wei"],
    ),
    (
        "bad address",
        lambda c: c.update(contracts=live_contracts("0x1234")),
        ["contracts.executor: got '0x1234'; expected a 20-byte hex address (0x + 40 hex digits)"],
    ),
    (
        "wrong checksum address",
        lambda c: c.update(contracts=live_contracts("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")),
        [
            "contracts.executor: got '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD'; expected an "
            "address whose mixed case matches its EIP-55 checksum (a wrong checksum usually "
            "means a typo)"
        ],
    ),
    (
        "zero executor",
        lambda c: c.update(contracts=live_contracts("0x" + "0" * 40)),
        [
            "contracts.executor: got '0x0000000000000000000000000000000000000000'; expected a "
            "deployed contract, not the zero address"
        ],
    ),
    (
        "V3 router not an address",
        lambda c: c["contracts"].update(
            v3_dexes=[{"name": "v3", "factory": FACTORY, "router": "x"}]
        ),
        [
            "contracts.v3_dexes[0].router: got 'x'; expected a 20-byte hex address (0x + 40 hex "
            "digits)"
        ],
    ),
    (
        "V3 router is the factory",
        lambda c: c["contracts"].update(
            v3_dexes=[{"name": "v3", "factory": FACTORY, "router": FACTORY}]
        ),
        [
            f"contracts.v3_dexes[0].router: got '{FACTORY}'; expected the DEX's SwapRouter "
            "address, not its factory or the zero address (leave router out to backrun no "
            "pending swap of this DEX)"
        ],
    ),
    (
        "live chain without dexes",
        lambda c: c.update(contracts={"executor": FACTORY}),
        [
            "contracts: got a mapping; expected deployment_file (devnet) or both executor and "
            "dexes (a live chain)"
        ],
    ),
    (
        "bad URL scheme",
        lambda c: c["chain"]["rpc_endpoints"][0].update(url="ftp://rpc.example.org"),
        [
            "chain.rpc_endpoints[0].url: got 'ftp://rpc.example.org'; expected an http:// or "
            "https:// URL"
        ],
    ),
    (
        "bad URL shown without its credentials",
        lambda c: c["chain"]["rpc_endpoints"][0].update(ws_url="https://u:pw@rpc.example.org/k3y"),
        [
            "chain.rpc_endpoints[0].ws_url: got 'https://***@rpc.example.org/***'; expected a "
            "ws:// or wss:// URL"
        ],
    ),
    (
        "endpoint name longer than the bus carries",
        lambda c: c["chain"]["rpc_endpoints"][0].update(name="n" * 65),
        [
            f"chain.rpc_endpoints[0].name: got '{'n' * 56}...; expected string should have at "
            "most 64 characters"
        ],
    ),
    (
        "duplicate endpoint names",
        lambda c: c["chain"]["rpc_endpoints"].append({"name": "anvil", "url": "http://b:1"}),
        ["chain.rpc_endpoints[1].name: got 'anvil'; expected a name no other endpoint uses"],
    ),
    (
        "duplicate ports on one host",
        lambda c: c.update(services={"detect": {"health_port": 8081, "metrics_port": 9999}}),
        [
            "services.detect.health_port: got 8081; expected a port not used by "
            "services.ingest.health_port (on one host every service needs its own ports; set "
            "services.separate_hosts: true for containers)"
        ],
    ),
    (
        "health and metrics on the same port, even in containers",
        lambda c: c.update(
            services={"separate_hosts": True, "ingest": {"health_port": 80, "metrics_port": 80}}
        ),
        [
            "services.ingest.metrics_port: got 80; expected a port other than "
            "services.ingest.health_port"
        ],
    ),
    (
        "missing required section",
        lambda c: c.pop("chain"),
        ["chain: missing; expected a section with name, chain_id, rpc_endpoints (required)"],
    ),
    (
        "missing max_gas_price",
        lambda c: c["strategies"]["cyclic_arbitrage"].pop("max_gas_price"),
        [
            "strategies.cyclic_arbitrage.max_gas_price: missing; expected an amount like "
            "'50 gwei', '0.01 ether' or an integer of wei (required)"
        ],
    ),
    (
        "sandwich strategy",
        lambda c: c["strategies"].update(sandwich={"enabled": False, "max_gas_price": 1}),
        [
            "strategies.sandwich: got a mapping; expected one of cyclic_arbitrage, "
            "cross_dex_arbitrage, backrun: this bot never front-runs or sandwiches users"
        ],
    ),
    (
        "front-run strategy",
        lambda c: c["strategies"].update(FrontRunning=True),
        [
            "strategies.FrontRunning: got True; expected one of cyclic_arbitrage, "
            "cross_dex_arbitrage, backrun: this bot never front-runs or sandwiches users"
        ],
    ),
    (
        "arb that does not fit a block",
        lambda c: (
            c["chain"].update(block_gas_limit=2_000_000),
            c["strategies"]["cyclic_arbitrage"].update(gas_limit=3_000_000),
        ),
        [
            "strategies.cyclic_arbitrage.gas_limit: got 3000000; expected at most "
            "chain.block_gas_limit (2000000): a trade must fit in one block"
        ],
    ),
    (
        "not a boolean",
        lambda c: c["chain"].update(pending_feed="maybe"),
        ["chain.pending_feed: got 'maybe'; expected true or false"],
    ),
    (
        "section of the wrong type",
        lambda c: c.update(performance=5),
        ["performance: got 5; expected a mapping of keys"],
    ),
    (
        "block budget below the backrun budget",
        lambda c: c.update(
            performance={"decision_timeout_ms": 250, "block_decision_timeout_ms": 100}
        ),
        [
            "performance.block_decision_timeout_ms: got 100; expected at least "
            "performance.decision_timeout_ms (250): a block opportunity stays valid until the "
            "next block, so it gets at least a backrun's budget (e.g. the chain's block time "
            "in ms)"
        ],
    ),
    (
        "several problems, one line each",
        lambda c: (c.update(performance={"decision_timeout_ms": 0}), c["chain"].update(chain_id=0)),
        [
            "chain.chain_id: got 0; expected a number >= 1",
            "performance.decision_timeout_ms: got 0; expected a number >= 1",
        ],
    ),
]
