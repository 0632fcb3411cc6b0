"""The on-chain half of a key rotation (scripts/rotate-keys.sh runs it; docs/RUNBOOK.md).

    python -m mev_ops.rotate [--config PATH] --old-key PATH --new-key PATH
    python -m mev_ops.rotate [--config PATH] --traders-only --new-key OWNER_KEY
    add --lanes [--archive DIR] to either: replace the keys.lanes keys too

Steps, in order, each skipped when already done, so a rerun after a failure resumes:
  1. sweep the executor's profit tokens (WETH and every known token it holds) and its ETH to
     its beneficiary (the only place the contract pays out);
  2. `transferOwnership(new)` from the old key;
  3. move the old key's ETH, less this transfer's fee, to the new key so it can pay gas;
  4. `acceptOwnership()` from the new key;
  5. check `owner() == new` and `pendingOwner() == 0`;
  6. name every other nonce lane's key (keys.lanes > 1: `keys.lane_path(i)`) a trader again,
     `setTrader(lane, true)` from the new key: an ownership change drops the traders the
     previous owner named, and submit refuses to start while a lane key is not one.
`--lanes` replaces the lane keys instead of step 6 (mev_ops.rotate_lanes: new keys named
traders, their gas money moved, the old ones dropped and archived), after steps 1-5 or, with
`--traders-only`, alone. `--traders-only` does step 6 alone, from the owner's key (what
submit's start-up refusal "does not let lane N's key ... trade" asks for). Every lane key is
loaded before step 1, so a missing one changes nothing. `--lanes` is refused, nothing changed,
unless the emergency stop is engaged and acknowledged by every running submit, if any
(mev_ops.stop_check; the script engages it itself). Exit 0 done, 1 a step failed (the
message names it and how to resume), 2 usage or config, 3 `--lanes` without the emergency stop.
Key files are read with submit's loader (0600 enforced); only addresses are ever printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from eth_abi import decode
from eth_utils import to_checksum_address
from mev_common.executor import (
    decode_revert,
    encode_accept_ownership,
    encode_address_getter,
    encode_balance_of,
    encode_is_trader,
    encode_set_trader,
    encode_sweep,
    encode_sweep_eth,
    encode_transfer_ownership,
)
from mev_common.settings import KeySettings, Settings
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.types import TxParams

ZERO = "0x" + "00" * 20
RECEIPT_TIMEOUT_S = 120.0
GAS_MARGIN_PCT = 125  # estimate x 1.25: state may move between estimate and inclusion


class RotationError(RuntimeError):
    """A step failed; the message says which and what to do."""


@dataclass(frozen=True)
class Party:
    """A loaded key: the address, and a signer that never shows its secret."""

    address: str
    signer: Any  # services.submit.keys.Signer


def say(text: str) -> None:
    print(f"rotate: {text}", flush=True)


def load_party(path: Path, keys: KeySettings) -> Party:
    from services.submit.keys import KeyLoadError, load_signer

    cfg = keys.model_copy(update={"path": str(path)})
    try:
        signer = load_signer(cfg)
    except KeyLoadError as exc:
        raise RotationError(str(exc)) from None
    return Party(signer.address, signer)


class Chain:
    """The few RPC calls a rotation needs, signing locally."""

    def __init__(self, url: str, chain_id: int) -> None:
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        self.chain_id = chain_id
        actual = self.w3.eth.chain_id
        if actual != chain_id:
            raise RotationError(f"{url} is chain {actual}, the config says {chain_id}")

    def call(self, to: str, data: bytes) -> bytes:
        return bytes(self.w3.eth.call({"to": to, "data": data}))

    def address_of(self, executor: str, getter: str) -> str:
        word = self.call(executor, encode_address_getter(getter))
        return to_checksum_address(decode(["address"], word)[0])

    def is_trader(self, executor: str, account: str) -> bool:
        return bool(decode(["bool"], self.call(executor, encode_is_trader(account)))[0])

    def token_balance(self, token: str, owner: str) -> int:
        return int(decode(["uint256"], self.call(token, encode_balance_of(owner)))[0])

    def eth_balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(to_checksum_address(address)))

    def fees(self) -> tuple[int, int]:
        """(max fee, tip): twice the base fee plus the node's suggested tip."""
        base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        tip = int(self.w3.eth.max_priority_fee)
        return 2 * base + tip, tip

    def send(
        self, party: Party, to: str, data: bytes, what: str, value: int = 0, gas: int = 0
    ) -> None:
        """Sign, send and wait; raise RotationError naming `what` on a revert."""
        tx: dict[str, Any] = {"from": party.address, "to": to, "data": data, "value": value}
        if not gas:
            try:
                gas = self.w3.eth.estimate_gas(cast(TxParams, tx)) * GAS_MARGIN_PCT // 100
            except ContractLogicError as exc:
                raise RotationError(f"{what} would revert: {_reason(exc)}") from None
        max_fee, tip = self.fees()
        tx |= {
            "type": 2, "chainId": self.chain_id, "gas": gas,
            "nonce": self.w3.eth.get_transaction_count(to_checksum_address(party.address),
                                                      "pending"),
            "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip,
        }  # fmt: skip
        del tx["from"]
        raw, tx_hash = party.signer.sign(tx)
        self.w3.eth.send_raw_transaction(raw)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
        if receipt["status"] != 1:
            raise RotationError(f"{what} reverted on chain (tx {tx_hash})")
        say(f"{what}: ok (tx {tx_hash})")


def _reason(exc: ContractLogicError) -> str:
    data = exc.data if isinstance(exc.data, str) else ""
    if data.startswith("0x"):
        return str(decode_revert(bytes.fromhex(data[2:])))
    return str(exc)


def rotate(chain: Chain, executor: str, tokens: Sequence[str], old: Party, new: Party) -> None:
    """Steps 1-5 of the module docstring; idempotent."""
    executor = to_checksum_address(executor)
    owner = chain.address_of(executor, "owner")
    beneficiary = chain.address_of(executor, "beneficiary")
    say(f"executor {executor}: owner {owner}, beneficiary {beneficiary}")
    say(f"old key {old.address} -> new key {new.address}")
    if owner == new.address:
        say("the new key already owns the executor")
    elif owner != old.address:
        raise RotationError(
            f"the executor's owner is {owner}, neither the old key {old.address} nor the new "
            f"one: nothing was changed; recover with the beneficiary's key "
            f"(transferOwnership from {beneficiary}, docs/RUNBOOK.md)"
        )
    else:
        for token in dict.fromkeys(to_checksum_address(t) for t in tokens):
            amount = chain.token_balance(token, executor)
            if amount:
                chain.send(old, executor, encode_sweep(token, amount), f"sweep {amount} of {token}")
        eth = chain.eth_balance(executor)
        if eth:
            chain.send(old, executor, encode_sweep_eth(eth), f"sweep {eth} wei")
        if chain.address_of(executor, "pendingOwner") != new.address:
            chain.send(old, executor, encode_transfer_ownership(new.address), "transferOwnership")
        max_fee, _ = chain.fees()
        spare = chain.eth_balance(old.address) - 21_000 * max_fee
        if spare > 0:
            chain.send(old, new.address, b"", f"move {spare} wei to the new key", spare, 21_000)
        chain.send(new, executor, encode_accept_ownership(), "acceptOwnership")
    owner, pending = chain.address_of(executor, "owner"), chain.address_of(executor, "pendingOwner")
    if owner != new.address or pending != ZERO:
        raise RotationError(f"after the rotation owner is {owner} and pendingOwner {pending}")
    say(f"done: the executor is owned by {new.address}")


def authorize_lanes(chain: Chain, executor: str, owner: Party, lanes: Sequence[Party]) -> None:
    """Step 6: every lane key a trader of `owner`'s executor; idempotent."""
    executor = to_checksum_address(executor)
    actual = chain.address_of(executor, "owner")
    if lanes and actual != owner.address:
        raise RotationError(
            f"the executor's owner is {actual}, not {owner.address}: only the owner names traders"
        )
    for lane, party in enumerate(lanes, start=1):
        if chain.is_trader(executor, party.address):
            say(f"lane {lane} key {party.address} is a trader already")
            continue
        allow = encode_set_trader(party.address, True)
        chain.send(owner, executor, allow, f"setTrader(lane {lane} key {party.address}, true)")
        if not chain.is_trader(executor, party.address):
            raise RotationError(f"lane {lane} key {party.address} is not a trader after setTrader")


def lane_parties(settings: Settings) -> list[Party]:
    """The keys of lanes 1.. (keys.lanes), loaded like keys.path, addresses only shown."""
    keys = settings.keys
    return [load_party(Path(keys.lane_path(i)), keys) for i in range(1, keys.lanes)]


def run(
    settings: Settings,
    old_key: Path | None,
    new_key: Path,
    new_lanes: bool = False,
    archive: Path | None = None,
) -> int:
    """`new_lanes`: replace the lane keys too (mev_ops.rotate_lanes), archiving the old ones in
    `archive` (default: `archive` beside keys.path, as scripts/rotate-keys.sh does)."""
    from mev_common.chain.contracts import ContractsError, load_contracts

    from mev_ops import rotate_lanes as lanes_mod
    from mev_ops.stop_check import StopNotEngaged, require_stop

    if new_lanes:
        try:
            require_stop(settings)
        except StopNotEngaged as exc:
            print(f"rotate: REFUSED: {exc}", file=sys.stderr, flush=True)
            return 3
    try:
        contracts = load_contracts(settings)
        new, lanes = load_party(new_key, settings.keys), lane_parties(settings)
        nexts = lanes_mod.next_lane_parties(settings.keys) if new_lanes else []
        if new.address in {lane.address for lane in (*lanes, *nexts)}:
            raise RotationError(f"the new key {new.address} is one of the keys.lanes keys")
        chain = Chain(settings.chain.rpc_endpoints[0].url, settings.chain.chain_id)
        if new_lanes:
            lanes_mod.require_settled(chain, lanes)
        if old_key is not None:
            old = load_party(old_key, settings.keys)
            if old.address == new.address:
                raise RotationError("the old and new key files hold the same key")
            tokens = [t for t in (contracts.weth, *contracts.tokens) if t]
            rotate(chain, contracts.executor, tokens, old, new)
        if new_lanes:
            lanes_mod.rotate_lanes(chain, contracts.executor, new, lanes, nexts)
            where = archive or Path(settings.keys.path).parent / "archive"
            lanes_mod.swap_lane_files(settings.keys, where)
        else:
            authorize_lanes(chain, contracts.executor, new, lanes)
    except (RotationError, ContractsError) as exc:
        print(f"rotate: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # RPC down, funds short: one line, and how to resume
        print(
            f"rotate: FAILED: {type(exc).__name__}: {exc}; fix it and rerun (done steps are "
            "skipped)",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mev_ops.rotate", description=__doc__)
    parser.add_argument("--config", metavar="PATH", help="config YAML (default as mev-bot)")
    parser.add_argument("--old-key", type=Path, help="key file owning the executor")
    parser.add_argument("--new-key", required=True, type=Path, help="key file to hand it to")
    parser.add_argument(
        "--traders-only",
        action="store_true",
        help="only name the keys.lanes keys traders, from --new-key (the owner's key)",
    )
    parser.add_argument(
        "--lanes",
        action="store_true",
        help="also replace every keys.lanes key (new 0600 keys, old ones archived; refused "
        "unless the emergency stop is engaged, and while an old lane key has a tx in flight): "
        "mev_ops.rotate_lanes",
    )
    parser.add_argument("--archive", type=Path, help="with --lanes: where the old lane keys go")
    args = parser.parse_args(argv)
    if (args.old_key is None) != args.traders_only:
        parser.error("give --old-key (a rotation) or --traders-only (step 6 alone), not both")
    from mev_ops.cli import _settings as load_or_report  # prints each config problem

    settings = load_or_report(args.config)
    if settings is None:
        return 2
    return run(settings, args.old_key, args.new_key, args.lanes, args.archive)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
