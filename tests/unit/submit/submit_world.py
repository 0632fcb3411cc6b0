"""The submitter's world for unit tests: an in-memory chain (fake_chain.py), a real SQLite
ledger and safety store, a real signer and the gate's config (gate_world.py); what it
published is kept. Shared by the submitter's tests (test_submitter.py, test_settlement.py,
test_submitter_*.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from mev_common.chain.pools import UNISWAP_V2_INIT_CODE_HASH, v2_pair_address
from mev_common.messages import Outcome

from services.submit.decide import Policy
from services.submit.keys import Signer
from services.submit.ledger import Ledger
from services.submit.safety import SafetyStore
from services.submit.submitter import Submitter
from tests.unit.submit.fake_chain import FakeChain
from tests.unit.submit.gate_world import CONTRACTS, FACTORY_A, FACTORY_B, HEAD, WETH, settings

KEY = "0x" + "42" * 32
DAI = to_checksum_address("0x" + "0d" * 20)
PAIR_C = v2_pair_address(FACTORY_A, WETH, DAI, UNISWAP_V2_INIT_CODE_HASH)
PAIR_D = v2_pair_address(FACTORY_B, DAI, WETH, UNISWAP_V2_INIT_CODE_HASH)


class World:
    def __init__(self, tmp: Path, lanes: int = 1, **submit: Any) -> None:
        self.lane_keys = ["0x" + f"{0x43 + k:02x}" * 32 for k in range(lanes - 1)]
        self.db = tmp / "ledger.db"
        self.settings = settings(**submit)
        self.chain = FakeChain(head=HEAD.number, base_fee=HEAD.next_base_fee)
        self.published: list[Outcome] = []
        self.blocker: str | None = None
        self.revision = 5
        self.ledger = Ledger(self.db)
        self.safety = SafetyStore(self.db, self.ledger)  # as the service: kept by its writes
        self.submitter = self.new_submitter()

    def new_submitter(self) -> Submitter:
        async def publish(outcome: Outcome, trace: str, seen_ns: int, version: str) -> None:
            self.published.append(outcome)

        return Submitter(
            settings=self.settings,
            ledger=self.ledger,
            pool=self.chain,
            signer=Signer(Account.from_key(KEY)),
            policy=Policy.from_settings(self.settings, CONTRACTS),
            safety=self.safety,
            publish=publish,
            send_blocker=lambda: self.blocker,
            native_token=WETH,
            control_revision=lambda: self.revision,
            lane_signers=[Signer(Account.from_key(k)) for k in self.lane_keys],
        )

    async def start(self) -> Submitter:
        await self.submitter.fetch_head()
        await self.submitter.sync_nonces()
        return self.submitter

    def outcome(self, bundle_id: str) -> Outcome:
        [found] = [o for o in self.published if o.bundle_id == bundle_id]
        return found


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)
