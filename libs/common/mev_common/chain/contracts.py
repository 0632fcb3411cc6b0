"""Where the bot's on-chain pieces are: the executor, WETH, each DEX, known tokens and pairs.

Two sources, one shape: a live chain lists them in the config (`contracts.executor`,
`contracts.dexes`); the devnet writes them to `contracts.deployment_file` at `devnet up`.
Services read this view and never the raw file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from mev_common.chain.pools import UNISWAP_V2_INIT_CODE_HASH, UNISWAP_V3_INIT_CODE_HASH
from mev_common.settings import Settings


class ContractsError(Exception):
    """The deployment is missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class Dex:
    name: str
    factory: str
    router: str | None
    fee_bps: int
    init_code_hash: str = UNISWAP_V2_INIT_CODE_HASH


@dataclass(frozen=True)
class V3Dex:
    """A Uniswap-V3-style factory the executor allowlists (`setV3Factory`)."""

    name: str
    factory: str
    init_code_hash: str = UNISWAP_V3_INIT_CODE_HASH
    router: str | None = None  # its SwapRouter: ingest forwards pending calls to it to detect


@dataclass(frozen=True)
class TokenInfo:
    address: str
    symbol: str
    decimals: int


@dataclass(frozen=True)
class KnownPair:
    address: str
    dex: str
    token0: str
    token1: str
    fee_bps: int


@dataclass(frozen=True)
class ChainContracts:
    executor: str
    weth: str | None
    dexes: tuple[Dex, ...]
    tokens: dict[str, TokenInfo] = field(default_factory=dict)
    pairs: tuple[KnownPair, ...] = ()
    start_block: int = 0
    v3_dexes: tuple[V3Dex, ...] = ()

    @property
    def routers(self) -> frozenset[str]:
        """Router02s and SwapRouters: where the pending swaps a backrun follows are sent."""
        v3 = (d.router for d in self.v3_dexes if d.router)
        return frozenset(d.router for d in self.dexes if d.router).union(v3)

    def dex_by_factory(self, factory: str) -> Dex | None:
        return next((d for d in self.dexes if d.factory == factory), None)


def load_contracts(settings: Settings) -> ChainContracts:
    cfg = settings.contracts
    if cfg.deployment_file is None:
        return ChainContracts(
            executor=str(cfg.executor),
            weth=cfg.weth,
            dexes=tuple(
                Dex(d.name, d.factory, d.router, d.fee_bps, d.init_code_hash) for d in cfg.dexes
            ),
            v3_dexes=tuple(
                V3Dex(d.name, d.factory, d.init_code_hash, d.router) for d in cfg.v3_dexes
            ),
        )
    return read_deployment(Path(cfg.deployment_file), settings.chain.chain_id)


def read_deployment(path: Path, chain_id: int) -> ChainContracts:
    if not path.is_file():
        raise ContractsError(f"{path} not found: start the devnet with `mev-bot devnet up`")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        if int(data["chain_id"]) != chain_id:
            raise ContractsError(
                f"{path} is for chain {data['chain_id']}, the config says {chain_id}: "
                "redeploy with `mev-bot devnet up`"
            )
        cs = to_checksum_address
        tokens: dict[str, TokenInfo] = {
            cs(t["address"]): TokenInfo(cs(t["address"]), t["symbol"], int(t["decimals"]))
            for t in data.get("tokens", {}).values()
        }
        return ChainContracts(
            executor=cs(data["executor"]["address"]),
            weth=cs(data["weth"]) if data.get("weth") else None,
            dexes=tuple(
                Dex(
                    d["name"],
                    cs(d["factory"]),
                    cs(d["router"]),
                    int(d["fee_bps"]),
                    str(d.get("init_code_hash") or UNISWAP_V2_INIT_CODE_HASH).lower(),
                )
                for d in data["dexes"]
            ),
            tokens=tokens,
            pairs=tuple(
                KnownPair(
                    cs(p["address"]), p["dex"], cs(p["token0"]), cs(p["token1"]), int(p["fee_bps"])
                )
                for p in data.get("pairs", [])
            ),
            start_block=int(data.get("deploy_block", 0)),
            v3_dexes=tuple(
                V3Dex(
                    d["name"],
                    cs(d["factory"]),
                    str(d.get("init_code_hash") or UNISWAP_V3_INIT_CODE_HASH).lower(),
                    cs(d["swap_router"]) if d.get("swap_router") else None,
                )
                for d in data.get("v3_dexes", [])
            ),
        )
    except ContractsError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractsError(f"{path} is not a complete deployment ({exc!r}): redeploy") from exc
