"""The contracts section: the executor, WETH and the DEXes whose pools the bot may trade."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mev_common.chain.pools import UNISWAP_V2_INIT_CODE_HASH, UNISWAP_V3_INIT_CODE_HASH
from mev_common.settings.addresses import ZERO_ADDRESS, Address, CodeHash
from mev_common.settings.sections import Section, problem


class DexSettings(Section):
    name: str = Field(min_length=1)
    factory: Address
    router: Address | None = None
    fee_bps: int = Field(default=30, ge=0, lt=10_000)
    # keccak of the pair creation code: submit derives every pair address from it (CREATE2)
    init_code_hash: CodeHash = UNISWAP_V2_INIT_CODE_HASH


class V3DexSettings(Section):
    """A Uniswap-V3-style DEX: its pools are CREATE2 addresses of the factory, salted by
    (token0, token1, fee tier); submit refuses a V3 hop whose pool is not one of them."""

    name: str = Field(min_length=1)
    factory: Address
    # keccak of the pool creation code (POOL_INIT_CODE_HASH): Uniswap V3's unless forked
    init_code_hash: CodeHash = UNISWAP_V3_INIT_CODE_HASH
    # its SwapRouter: pending exactInputSingle/exactInput calls to it are backrun candidates
    router: Address | None = None

    @model_validator(mode="after")
    def _router(self) -> V3DexSettings:
        if self.router is not None and self.router in (self.factory, ZERO_ADDRESS):
            raise problem(
                ("router",), self.router,
                "the DEX's SwapRouter address, not its factory or the zero address (leave "
                "router out to backrun no pending swap of this DEX)",
            )  # fmt: skip
        return self


class ContractsSettings(Section):
    """Where the bot's on-chain pieces are: given here, or read from the devnet deployment."""

    deployment_file: str | None = None
    executor: Address | None = None
    weth: Address | None = None
    dexes: list[DexSettings] = Field(default_factory=list)
    v3_dexes: list[V3DexSettings] = Field(default_factory=list)
    # devnet deploy: "ExecutorStorageCommit" for chains without TSTORE (pre-Cancun, HyperEVM)
    executor_build: Literal["Executor", "ExecutorStorageCommit"] = "Executor"

    @model_validator(mode="after")
    def _source(self) -> ContractsSettings:
        if self.executor == ZERO_ADDRESS:
            raise problem(("executor",), self.executor, "a deployed contract, not the zero address")
        if self.deployment_file is None and (self.executor is None or not self.dexes):
            raise ValueError(
                "expected deployment_file (devnet) or both executor and dexes (a live chain)"
            )
        return self
