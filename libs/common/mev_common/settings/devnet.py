"""The `devnet:` section: how `make run` starts the local chain (and its HyperEVM profile)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mev_common.settings.sections import Section, problem
from mev_common.settings.units import Port


class DevnetSettings(Section):
    seed: int = 1
    port: Port = 8545
    block_time_s: int = Field(default=1, ge=1)
    flow_rate: float = Field(default=4.0, gt=0)
    # "hyperevm": anvil at HyperEVM's limits behind the RPC stand-in (docs/DEVNET.md).
    profile: Literal["ethereum", "hyperevm"] = "ethereum"
    hardfork: str | None = None  # anvil --hardfork, e.g. shanghai (no transient storage)
    block_gas_limit: int | None = Field(default=None, ge=21_000)  # anvil --gas-limit
    proxy_port: Port | None = None  # hyperevm: the stand-in's port, the bot's RPC URL
    proxy_budget_per_minute: int = Field(default=100, ge=1)  # calls per minute per client IP
    # `mev-bot run` starts the swap flow at this CPU niceness: it stands for the chain's users,
    # on other machines in production, and must not take a core from the bot's services on a
    # small host (mev_ops.devnet.priority)
    nice: int = Field(default=10, ge=0, le=19)

    @model_validator(mode="after")
    def _proxy(self) -> DevnetSettings:
        if self.profile == "hyperevm" and self.proxy_port is None:
            raise problem(("proxy_port",), None, "a free port for the HyperEVM stand-in")
        if self.proxy_port is not None and self.proxy_port == self.port:
            raise problem(("proxy_port",), self.proxy_port, "a port other than devnet.port")
        return self
