"""The HyperEVM stand-in against a real anvil: each refusal, the custom answers, the 429.

Counts are exact: every test reads /stats and checks calls and refusals by method.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mev_ops.devnet.anvil import AnvilNode, free_port, start_anvil
from mev_ops.devnet.hyperevm_proxy import HyperEvmProxy, make_server
from mev_ops.devnet.hyperevm_rules import next_base_fee

CHAIN = 999
ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's well-known account 0
TOPIC = "0x" + "11" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    node = start_anvil(free_port(), CHAIN, None, Path(tmp_path_factory.mktemp("anvil")))
    # 60 blocks so a 51-block range exists below the head
    httpx.post(node.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "anvil_mine",
                                   "params": ["0x3c"]})  # fmt: skip
    yield node
    node.stop()


class Running:
    def __init__(self, proxy: HyperEvmProxy, url: str, clock: Clock) -> None:
        self.proxy, self.url, self.clock = proxy, url, clock

    def call(self, method: str, params: list[Any] | None = None) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params or []}
        response = httpx.post(self.url, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.url + "/stats").json()


@pytest.fixture
def proxy(anvil: AnvilNode) -> Iterator[Running]:
    clock = Clock()
    proxy = HyperEvmProxy(anvil.rpc_url, budget_per_minute=10, clock=clock)
    server = make_server(proxy, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Running(proxy, f"http://127.0.0.1:{server.server_address[1]}", clock)
    server.shutdown()
    server.server_close()
    proxy.close()


STATE_READS = [
    ("eth_call", [{"to": ACCOUNT, "data": "0x"}, "0x1"]),
    ("eth_estimateGas", [{"from": ACCOUNT, "to": ACCOUNT, "value": "0x1"}, "pending"]),
    ("eth_getBalance", [ACCOUNT, "earliest"]),
    ("eth_getCode", [ACCOUNT, "0x2"]),
    ("eth_getStorageAt", [ACCOUNT, "0x0", "safe"]),
    ("eth_getTransactionCount", [ACCOUNT, "pending"]),
]


@pytest.mark.parametrize(("method", "params"), STATE_READS)
def test_state_read_at_any_tag_but_latest_is_refused(
    proxy: Running, method: str, params: list[Any]
) -> None:
    answer = proxy.call(method, params)
    assert answer["error"] == {"code": -32602, "message": "only the latest block is supported"}
    assert answer["id"] == 7
    latest = proxy.call(method, [*params[:-1], "latest"])
    assert "result" in latest, latest
    stats = proxy.stats()
    assert stats["calls"] == {method: 2}
    assert stats["refused"] == {method: {"state_not_latest": 1}}
    assert stats["refused_total"] == 1


def test_get_logs_range_and_topics(proxy: Running) -> None:
    head = int(proxy.call("eth_blockNumber")["result"], 16)
    assert head >= 60
    wide = proxy.call("eth_getLogs", [{"fromBlock": hex(head - 50), "toBlock": hex(head)}])
    assert wide["error"]["message"] == "up to 50 blocks in query range"
    wide_by_tag = proxy.call("eth_getLogs", [{"fromBlock": hex(head - 50)}])  # to = latest
    assert wide_by_tag["error"]["message"] == "up to 50 blocks in query range"
    fifty = proxy.call("eth_getLogs", [{"fromBlock": hex(head - 49), "toBlock": "latest"}])
    assert fifty["result"] == []
    topics = proxy.call("eth_getLogs", [{"fromBlock": "latest", "topics": [TOPIC] * 5}])
    assert topics["error"]["message"] == "up to 4 topics"
    four = proxy.call("eth_getLogs", [{"fromBlock": "latest", "topics": [TOPIC] * 4}])
    assert four["result"] == []
    stats = proxy.stats()
    assert stats["calls"] == {"eth_blockNumber": 1, "eth_getLogs": 5}
    assert stats["refused"] == {
        "eth_getLogs": {"logs_range_too_wide": 2, "logs_too_many_topics": 1}
    }


@pytest.mark.parametrize(
    "method",
    ["eth_subscribe", "txpool_content", "eth_newPendingTransactionFilter", "anvil_mine"],
)
def test_methods_hyperevm_does_not_offer_are_refused(proxy: Running, method: str) -> None:
    answer = proxy.call(method, ["newPendingTransactions"] if method == "eth_subscribe" else [])
    assert answer["error"]["code"] == -32601
    assert proxy.stats()["refused"] == {method: {"unsupported_method": 1}}


def test_websocket_upgrade_is_refused(proxy: Running) -> None:
    response = httpx.get(proxy.url, headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert response.status_code == 400
    assert proxy.stats()["refused"] == {"websocket": {"websocket": 1}}


def test_custom_answers(proxy: Running, anvil: AnvilNode) -> None:
    assert proxy.call("eth_maxPriorityFeePerGas")["result"] == "0x0"
    assert proxy.call("eth_usingBigBlocks", [ACCOUNT])["result"] is False
    query = {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber"}
    block = httpx.post(anvil.rpc_url, json={**query, "params": ["latest", False]}).json()["result"]
    used, limit = int(block["gasUsed"], 16), int(block["gasLimit"], 16)
    expected = next_base_fee(int(block["baseFeePerGas"], 16), used, limit)
    assert int(proxy.call("eth_gasPrice")["result"], 16) == expected
    assert int(proxy.call("eth_bigBlockGasPrice")["result"], 16) == expected
    receipts = proxy.call("eth_getBlockReceipts", ["latest"])
    assert receipts["result"] == []
    assert proxy.stats()["refused_total"] == 0


def test_budget_counts_each_call_of_a_batch_and_answers_429(proxy: Running) -> None:
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId", "params": []} for i in range(8)]
    first = httpx.post(proxy.url, json=batch)
    assert first.status_code == 200
    assert [a["result"] for a in first.json()] == [hex(CHAIN)] * 8
    assert [a["id"] for a in first.json()] == list(range(8))
    # 8 used of 10: a batch of 3 is refused whole, then 2 single calls fit, the 11th does not
    assert httpx.post(proxy.url, json=batch[:3]).status_code == 429
    proxy.call("eth_blockNumber")
    proxy.call("eth_blockNumber")
    over = httpx.post(proxy.url, json=batch[0])
    assert over.status_code == 429
    assert over.json()["error"]["message"] == "rate limited"
    proxy.clock.now += 60.0  # the window slides: the budget is back
    proxy.call("eth_chainId")
    stats = proxy.stats()
    assert stats["calls"] == {"eth_chainId": 9, "eth_blockNumber": 2}
    assert stats["rate_limited_requests"] == 2
    assert stats["rate_limited_calls"] == {"eth_chainId": 4}
    assert stats["per_minute"] == {"0": 10, "1": 1}


def test_mixed_batch_keeps_order_and_refuses_only_the_bad_call(proxy: Running) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_getBalance", "params": [ACCOUNT, "0x1"]},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_maxPriorityFeePerGas", "params": []},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_getBalance", "params": [ACCOUNT, "latest"]},
    ]
    answers = httpx.post(proxy.url, json=batch).json()
    assert [a["id"] for a in answers] == [1, 2, 3, 4]
    assert answers[0]["result"] == hex(CHAIN)
    assert answers[1]["error"]["message"] == "only the latest block is supported"
    assert answers[2]["result"] == "0x0"
    assert int(answers[3]["result"], 16) > 0
    stats = proxy.stats()
    assert stats["http_requests"] == 1
    assert stats["calls_total"] == 4
    assert stats["refused"] == {"eth_getBalance": {"state_not_latest": 1}}
