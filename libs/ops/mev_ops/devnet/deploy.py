"""Deploy the devnet onto a running anvil: WETH9, tokens, two DEXes (Uniswap V2 pairs, and
Uniswap V3 pools from deploy_v3.py), executor.

Everything comes from account 0 of the devnet mnemonic with a local nonce, so addresses are the
same on every run; amounts come from the seed (layout.py). The node signs and mines the
transactions in bulk (sender.send_bulk: the deployer's, then the users', then the V3 side), a few
blocks in all: one signed and mined at a time, the deploy took 3-10 s longer on a busy host
(every `mev-bot run` starts with it). Interval mining is restored afterwards.
The V3 side comes last, so every V2 address (the executor's too) is what it was before V3.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import keccak, to_checksum_address
from mev_common.chain.pools import v2_pair_address
from web3 import Web3

from mev_ops.devnet.anvil import DEVNET_MNEMONIC
from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.deploy_checks import check_allowlist, check_routing, check_v3_allowlist
from mev_ops.devnet.deploy_v3 import (
    check_v3,
    plan_v3_contracts,
    plan_v3_pools_txs,
    v3_weth_needed,
)
from mev_ops.devnet.keys import load_or_create_key
from mev_ops.devnet.layout import (
    DEX_FEE_BPS,
    DEX_NAMES,
    TOKENS,
    USER_COUNT,
    USER_FUNDING_USD,
    plan_pools,
    raw_amount,
    token_supply,
)
from mev_ops.devnet.sender import GWEI, Sender, rpc, send_bulk, wait_all

DEPLOYMENT_VERSION = 1
MAX_UINT = 2**256 - 1
FAR_DEADLINE = 2**40  # for deploy-time liquidity only; user swaps carry real deadlines
BOT_FUNDING_WEI = 1_000 * 10**18
LANE_FUNDING_WEI = 100 * 10**18  # each extra nonce lane's gas money, from the bot key
EXECUTOR_WETH = 10 * 10**18  # lets non-flash arbitrage work from the start
# The executor's cold beneficiary: the one devnet account no flow user or deployer uses.
BENEFICIARY_INDEX = 9
DEPLOY_BLOCK_GAS = 30_000_000  # anvil's default block; the deploy's largest tx takes 5M
# anvil starts at a 1 gwei base fee, which falls by 1/8 per quiet block to 7 wei, where it idles.
# The deploy takes a few blocks, not the ~140 that decay needs: the first block after it starts
# at the idle value, as on a chain running for a while (flow users cap their fee near it).
IDLE_BASE_FEE_WEI = 7


Account.enable_unaudited_hdwallet_features()


class DeployError(RuntimeError):
    """The node is not the chain the config describes."""


@cache  # a BIP-32 derivation costs ~10 ms of CPU; the deploy asks for each account twice
def devnet_account(index: int) -> LocalAccount:
    """Account `index` of the public devnet mnemonic: 0 deploys, 1..USER_COUNT are flow users."""
    return Account.from_mnemonic(DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def pair_address(
    factory: str, token_x: str, token_y: str, init_code_hash: bytes
) -> ChecksumAddress:
    """CREATE2 address of a V2 pair, exactly as Router02's pairFor computes it."""
    return to_checksum_address(v2_pair_address(factory, token_x, token_y, init_code_hash))


def deploy_devnet(
    rpc_url: str,
    chain_id: int,
    seed: int,
    key_path: Path,
    out_path: Path,
    *,
    block_time: int | None = 1,
    executor_build: str = "Executor",
    lane_paths: Sequence[Path] = (),
) -> dict[str, Any]:
    """Deploy everything, fund the bot key (created if absent) and write the deployment file.
    `lane_paths`: the extra nonce lanes' keys (keys.lanes; created if absent), each funded and
    authorized on the executor by the owner (`setTrader`), after everything else, so every
    address is what it is without lanes.

    `block_time` is the interval mining restored afterwards (None: leave automine on).
    `executor_build`: "Executor" (flash commitment in transient storage) or
    "ExecutorStorageCommit" (storage slot, for chains without TSTORE).
    Returns the deployment dict that was written to `out_path`.
    """
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    if w3.eth.chain_id != chain_id:
        raise DeployError(f"the node has chain id {w3.eth.chain_id}, the config says {chain_id}")
    bot = load_or_create_key(key_path)
    lanes = [load_or_create_key(p) for p in lane_paths]
    rpc(w3, "evm_setAutomine", [True])
    # a small-block chain (HyperEVM: 2M gas) cannot hold a factory deploy: lift it while deploying
    gas_limit = int(w3.eth.get_block("latest")["gasLimit"])
    if gas_limit < DEPLOY_BLOCK_GAS:
        rpc(w3, "evm_setBlockGasLimit", [hex(DEPLOY_BLOCK_GAS)])
    try:
        deployment = _deploy(w3, chain_id, seed, bot, executor_build)
        deployment["traders"] = _add_lanes(
            w3, chain_id, bot, deployment["executor"]["address"], executor_build, lanes
        )
    finally:
        if gas_limit < DEPLOY_BLOCK_GAS:
            rpc(w3, "evm_setBlockGasLimit", [hex(gas_limit)])
            rpc(w3, "evm_mine", [])  # the latest block shows the chain's own limit again
        rpc(w3, "anvil_setNextBlockBaseFeePerGas", [hex(IDLE_BASE_FEE_WEI)])
        if block_time is not None:
            rpc(w3, "evm_setIntervalMining", [block_time])
    _write_json(out_path, deployment)
    return deployment


def _deploy(
    w3: Web3, chain_id: int, seed: int, bot_key: LocalAccount, executor_build: str
) -> dict[str, Any]:
    bot = bot_key.address
    start_block = w3.eth.block_number + 1
    deployer = Sender(w3, devnet_account(0), chain_id, max_fee=100 * GWEI, tip=GWEI)
    sent: list[dict[str, Any]] = []  # for the node to sign: one bulk, not a block per tx

    weth_art, token_art = load_artifact("WETH9"), load_artifact("DevToken")
    tx, weth = deployer.unsigned_deploy(weth_art, gas=2_000_000)
    sent.append(tx)
    tokens: dict[str, dict[str, Any]] = {
        "WETH": {"symbol": "WETH", "name": "Wrapped Ether", "decimals": 18, "address": weth}
    }
    for spec in TOKENS[1:]:
        args = (spec.name, spec.symbol, spec.decimals, token_supply(spec.symbol))
        tx, address = deployer.unsigned_deploy(token_art, args, gas=2_000_000)
        sent.append(tx)
        tokens[spec.symbol] = {
            "symbol": spec.symbol, "name": spec.name, "decimals": spec.decimals, "address": address,
        }  # fmt: skip

    pair_art = load_artifact("UniswapV2Pair")
    init_code_hash = keccak(pair_art.bytecode)
    dexes: list[dict[str, Any]] = []
    for name in DEX_NAMES:
        tx, factory = deployer.unsigned_deploy(
            load_artifact("UniswapV2Factory"), [deployer.address], 5_000_000
        )
        sent.append(tx)
        tx, router = deployer.unsigned_deploy(
            load_artifact("UniswapV2Router02"), [factory, weth], 6_000_000
        )
        sent.append(tx)
        dexes.append({
            "name": name, "factory": factory, "router": router, "fee_bps": DEX_FEE_BPS,
            "init_code_hash": "0x" + init_code_hash.hex(),
        })  # fmt: skip
    # Owner: the bot key; profit leaves only to the beneficiary; both DEXes' factories are
    # allowlisted with the hash of the npm Pair creation code (what their CREATE2 uses).
    beneficiary = devnet_account(BENEFICIARY_INDEX).address
    allowlist = [(d["factory"], init_code_hash) for d in dexes]
    tx, executor = deployer.unsigned_deploy(
        load_artifact(executor_build), [bot, beneficiary, allowlist], 3_000_000
    )
    sent.append(tx)

    weth_c = w3.eth.contract(address=weth, abi=weth_art.abi)
    erc20 = w3.eth.contract(abi=token_art.abi)
    pools = plan_pools(seed)
    weth_needed = EXECUTOR_WETH + sum(
        p.amount_a if p.symbol_a == "WETH" else p.amount_b if p.symbol_b == "WETH" else 0
        for p in pools
    )
    sent.append(deployer.unsigned(weth, weth_c.encode_abi("deposit"), 100_000, value=weth_needed))
    for token in tokens.values():
        for dex in dexes:
            data = erc20.encode_abi("approve", [dex["router"], MAX_UINT])
            sent.append(deployer.unsigned(token["address"], data, 100_000))

    router_abi = load_artifact("UniswapV2Router02").abi
    by_name = {d["name"]: d for d in dexes}
    pairs = []
    for pool in pools:
        dex = by_name[pool.dex]
        router = w3.eth.contract(address=dex["router"], abi=router_abi)
        a, b = tokens[pool.symbol_a]["address"], tokens[pool.symbol_b]["address"]
        data = router.encode_abi(
            "addLiquidity",
            [a, b, pool.amount_a, pool.amount_b, 0, 0, deployer.address, FAR_DEADLINE],
        )
        sent.append(deployer.unsigned(dex["router"], data, 4_000_000))
        address = pair_address(dex["factory"], a, b, init_code_hash)
        token0, token1 = sorted(
            (pool.symbol_a, pool.symbol_b), key=lambda s: int(tokens[s]["address"], 16)
        )
        pairs.append({
            "dex": pool.dex, "address": address, "fee_bps": dex["fee_bps"],
            "token0": tokens[token0]["address"], "token1": tokens[token1]["address"],
            "symbol0": token0, "symbol1": token1, "name": f"{pool.dex}:{token0}/{token1}",
        })  # fmt: skip

    sent.append(deployer.unsigned(bot, b"", 21_000, value=BOT_FUNDING_WEI))
    sent.append(
        deployer.unsigned(weth, erc20.encode_abi("transfer", [executor, EXECUTOR_WETH]), 100_000)
    )
    user_txs: list[dict[str, Any]] = []
    users = _fund_users(w3, chain_id, deployer, tokens, dexes, erc20, weth_c, sent, user_txs)
    send_bulk(w3, sent)  # the users' own transactions call contracts these create: after them
    send_bulk(w3, user_txs)
    # V3 last, so every V2 address (and the executor's) is what it was before V3 existed.
    v3_dexes, v3_pools = _deploy_v3(w3, chain_id, seed, deployer, tokens, erc20, weth_c)
    _start_price_accumulators(w3, deployer, pair_art, pairs)
    check_routing(w3, dexes, pairs)
    check_v3(w3, v3_dexes, v3_pools)
    check_allowlist(w3, executor, pairs)
    # The executor's owner (the bot key) allowlists the V3 factories: they exist only now.
    _allow_v3(
        w3, chain_id, bot_key, load_artifact(executor_build).abi, executor, v3_dexes, v3_pools
    )

    return {
        "version": DEPLOYMENT_VERSION,
        "chain_id": chain_id,
        "seed": seed,
        "deploy_block": start_block,
        "ready_block": w3.eth.block_number,
        "deployer": deployer.address,
        "weth": weth,
        "tokens": tokens,
        "dexes": dexes,
        "pairs": pairs,
        "v3_dexes": v3_dexes,
        "v3_pools": v3_pools,
        "executor": {
            "address": executor,
            "owner": bot,
            "beneficiary": beneficiary,
            "build": executor_build,
            "weth_balance": str(EXECUTOR_WETH),
        },
        "bot": bot,
        "users": users,
    }


def _start_price_accumulators(
    w3: Web3, deployer: Sender, pair_art: Any, pairs: list[dict[str, Any]]
) -> None:
    """`sync` every pair one second after the bulk deploy. A pair's price accumulators start
    only when a later second touches it, and the first write of each costs a trade 17,100 gas
    more: without this, a cycle's gas depended on whether the bulk deploy happened to straddle
    a second (test_executor's exact gas failed now and then)."""
    head = int(w3.eth.get_block("latest")["timestamp"])
    rpc(w3, "evm_setNextBlockTimestamp", [head + 1])
    sync = w3.eth.contract(abi=pair_art.abi).encode_abi("sync")
    send_bulk(w3, [deployer.unsigned(p["address"], sync, 100_000) for p in pairs])


def _fund_users(
    w3: Web3,
    chain_id: int,
    deployer: Sender,
    tokens: dict[str, dict[str, Any]],
    dexes: list[dict[str, Any]],
    erc20: Any,
    weth_c: Any,
    sent: list[dict[str, Any]],
    user_txs: list[dict[str, Any]],
) -> list[ChecksumAddress]:
    """Give each flow user tokens (`sent`, the deployer's), WETH wrapped from its own ETH and
    approvals on both routers (`user_txs`, the users')."""
    users = []
    for index in range(1, USER_COUNT + 1):
        user = Sender(w3, devnet_account(index), chain_id, max_fee=100 * GWEI, tip=GWEI)
        users.append(user.address)
        for spec in TOKENS[1:]:
            data = erc20.encode_abi(
                "transfer", [user.address, raw_amount(spec.symbol, USER_FUNDING_USD)]
            )
            sent.append(deployer.unsigned(tokens[spec.symbol]["address"], data, 100_000))
        deposit = weth_c.encode_abi("deposit")
        user_txs.append(
            user.unsigned(
                tokens["WETH"]["address"],
                deposit,
                100_000,
                value=raw_amount("WETH", USER_FUNDING_USD),
            )
        )
        for token in tokens.values():
            for dex in dexes:
                data = erc20.encode_abi("approve", [dex["router"], MAX_UINT])
                user_txs.append(user.unsigned(token["address"], data, 100_000))
    return users


def _deploy_v3(
    w3: Web3,
    chain_id: int,
    seed: int,
    deployer: Sender,
    tokens: dict[str, dict[str, Any]],
    erc20: Any,
    weth_c: Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """V3 factories, routers and pools with liquidity; users approve each SwapRouter. Sent in
    bulk (the node signs; one block): ~500 transactions that would otherwise triple the time."""
    weth = tokens["WETH"]["address"]
    txs: list[dict[str, Any]] = []
    v3_dexes = plan_v3_contracts(deployer, weth, DEX_NAMES, txs)
    txs.append(deployer.unsigned(weth, weth_c.encode_abi("deposit"), 100_000,
                                 value=v3_weth_needed(seed)))  # fmt: skip
    for token in tokens.values():
        for dex in v3_dexes:
            data = erc20.encode_abi("approve", [dex["position_manager"], MAX_UINT])
            txs.append(deployer.unsigned(token["address"], data, 100_000))
    v3_pools = plan_v3_pools_txs(w3, deployer, seed, tokens, v3_dexes, txs)
    for index in range(1, USER_COUNT + 1):
        user = Sender(w3, devnet_account(index), chain_id, max_fee=100 * GWEI, tip=GWEI)
        for token in tokens.values():
            for dex in v3_dexes:
                data = erc20.encode_abi("approve", [dex["swap_router"], MAX_UINT])
                txs.append(user.unsigned(token["address"], data, 100_000))
    send_bulk(w3, txs)
    return v3_dexes, v3_pools


def _allow_v3(
    w3: Web3,
    chain_id: int,
    bot_key: LocalAccount,
    abi: list[Any],
    executor: str,
    v3_dexes: list[dict[str, Any]],
    v3_pools: list[dict[str, Any]],
) -> None:
    """`setV3Factory` for each V3 DEX (the bot's first transactions), then prove the executor
    accepts every devnet V3 pool."""
    contract = w3.eth.contract(address=to_checksum_address(executor), abi=abi)
    owner = Sender(w3, bot_key, chain_id, max_fee=100 * GWEI, tip=GWEI)
    sent = []
    for dex in v3_dexes:
        data = contract.encode_abi(
            "setV3Factory", [dex["factory"], bytes.fromhex(dex["init_code_hash"][2:]), True]
        )
        sent.append(owner.send(executor, data, 200_000))
    wait_all(w3, sent)
    check_v3_allowlist(w3, executor, v3_pools)


def _add_lanes(
    w3: Web3,
    chain_id: int,
    bot_key: LocalAccount,
    executor: str,
    executor_build: str,
    lanes: list[LocalAccount],
) -> list[str]:
    """The owner funds each lane key and names it a trader; returns their addresses."""
    contract = w3.eth.contract(
        address=to_checksum_address(executor), abi=load_artifact(executor_build).abi
    )
    owner = Sender(w3, bot_key, chain_id, max_fee=100 * GWEI, tip=GWEI)
    sent = []
    for lane in lanes:
        sent.append(owner.send(lane.address, b"", 21_000, value=LANE_FUNDING_WEI))
        allow = contract.encode_abi("setTrader", [lane.address, True])
        sent.append(owner.send(executor, allow, 100_000))
    wait_all(w3, sent)
    for lane in lanes:
        if not contract.functions.isTrader(lane.address).call():
            raise DeployError(f"lane key {lane.address} is not a trader of the executor")
    return [lane.address for lane in lanes]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a reader never sees half a deployment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
