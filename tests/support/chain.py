"""Read the chain the way the money checks do: raw JSON-RPC, balances to the wei."""

from __future__ import annotations

from typing import Any

import httpx
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector

BALANCE_OF = "0x" + function_signature_to_4byte_selector("balanceOf(address)").hex()


def rpc(url: str, method: str, params: list[Any]) -> Any:
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    return reply.json()["result"]


def weth_balance(url: str, weth: str, owner: str) -> int:
    data = BALANCE_OF + encode(["address"], [owner]).hex()
    raw = rpc(url, "eth_call", [{"to": weth, "data": data}, "latest"])
    return int(decode(["uint256"], bytes.fromhex(raw[2:]))[0])


def eth_balance(url: str, owner: str) -> int:
    return int(rpc(url, "eth_getBalance", [owner, "latest"]), 16)
