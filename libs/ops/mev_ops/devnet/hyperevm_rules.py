"""What HyperEVM's official JSON-RPC refuses or answers itself, as pure functions.

The stand-in proxy (hyperevm_proxy.py) applies these to every call before anvil sees it. Source:
the Hyperliquid docs' HyperEVM JSON-RPC page (method list, "only the latest block is supported",
"up to 50 blocks", "up to 4 topics", priority fee always zero, gas price = next small block's base
fee). The exact error codes of the real endpoint are not documented; the codes below are the
JSON-RPC standard ones and the messages the documented wording, so a client that matches on the
message text matches the docs, not a guess about the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_LOG_BLOCKS = 50
MAX_LOG_TOPICS = 4
DEFAULT_BUDGET_PER_MINUTE = 100

# Standard methods the docs list, plus eth_sendRawTransaction (sending works on the real chain).
ALLOWED_METHODS = frozenset(
    {
        "net_version",
        "web3_clientVersion",
        "eth_blockNumber",
        "eth_call",
        "eth_chainId",
        "eth_estimateGas",
        "eth_feeHistory",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getBlockReceipts",
        "eth_getBlockTransactionCountByHash",
        "eth_getBlockTransactionCountByNumber",
        "eth_getCode",
        "eth_getLogs",
        "eth_getStorageAt",
        "eth_getTransactionByBlockHashAndIndex",
        "eth_getTransactionByBlockNumberAndIndex",
        "eth_getTransactionByHash",
        "eth_getTransactionCount",
        "eth_getTransactionReceipt",
        "eth_maxPriorityFeePerGas",
        "eth_syncing",
        "eth_sendRawTransaction",
        "eth_bigBlockGasPrice",
        "eth_usingBigBlocks",
    }
)

# State reads served only at `latest`: method -> index of the block parameter.
LATEST_ONLY = {
    "eth_call": 1,
    "eth_estimateGas": 1,
    "eth_getBalance": 1,
    "eth_getCode": 1,
    "eth_getStorageAt": 2,
    "eth_getTransactionCount": 1,
}

METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_ERROR = -32000


@dataclass(frozen=True)
class Refusal:
    """Why a call is refused: `reason` labels the stats, `code`/`message` go to the client."""

    reason: str
    code: int
    message: str

    def error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def refusal_for(method: str, params: list[Any], head: int | None) -> Refusal | None:
    """The refusal HyperEVM would give this call, or None if it would serve it.

    `head` is the latest block number, needed only to bound an eth_getLogs range given by tags;
    None when the caller has not looked it up (then a tag range counts as one block).
    """
    if method not in ALLOWED_METHODS:
        return Refusal(
            "unsupported_method",
            METHOD_NOT_FOUND,
            f"the method {method} does not exist/is not available",
        )
    if method in LATEST_ONLY:
        index = LATEST_ONLY[method]
        tag = params[index] if len(params) > index else "latest"
        if tag != "latest":
            return Refusal("state_not_latest", INVALID_PARAMS, "only the latest block is supported")
    if method == "eth_getLogs":
        return _logs_refusal(params[0] if params else {}, head)
    return None


def _logs_refusal(query: dict[str, Any], head: int | None) -> Refusal | None:
    topics = query.get("topics") or []
    if len(topics) > MAX_LOG_TOPICS:
        return Refusal("logs_too_many_topics", INVALID_PARAMS, f"up to {MAX_LOG_TOPICS} topics")
    if "blockHash" in query:
        return None
    start = block_number(query.get("fromBlock", "latest"), head)
    end = block_number(query.get("toBlock", "latest"), head)
    if start is not None and end is not None and end - start + 1 > MAX_LOG_BLOCKS:
        return Refusal(
            "logs_range_too_wide", INVALID_PARAMS, f"up to {MAX_LOG_BLOCKS} blocks in query range"
        )
    return None


def block_number(tag: Any, head: int | None) -> int | None:
    """A block parameter as a number; tags that mean the head resolve to `head`."""
    if isinstance(tag, int):
        return tag
    if isinstance(tag, str):
        if tag in ("latest", "pending", "safe", "finalized"):
            return head
        if tag == "earliest":
            return 0
        try:
            return int(tag, 16)
        except ValueError:
            return None
    return None


def next_base_fee(base_fee: int, gas_used: int, gas_limit: int) -> int:
    """EIP-1559's next base fee (elasticity 2, change denominator 8), as anvil computes it."""
    target = gas_limit // 2
    if target == 0 or gas_used == target:
        return base_fee
    if gas_used > target:
        return base_fee + max(1, base_fee * (gas_used - target) // target // 8)
    return base_fee - base_fee * (target - gas_used) // target // 8


def needs_head(calls: list[dict[str, Any]]) -> bool:
    """Whether any eth_getLogs in `calls` uses a tag range, so the proxy must know the head."""
    for call in calls:
        if call.get("method") != "eth_getLogs" or not call.get("params"):
            continue
        query = call["params"][0] if isinstance(call["params"][0], dict) else {}
        if "blockHash" in query:
            continue
        for key in ("fromBlock", "toBlock"):
            value = query.get(key, "latest")
            if not (isinstance(value, str) and value.startswith("0x")):
                return True
    return False
