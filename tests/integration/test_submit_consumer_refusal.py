"""Submit started on a durable JetStream cannot bring to the config (another ack policy)
refuses to start: exit 2, the durable and the fix named on stderr, nothing consumed
(mev_common.consumer_decl). Real anvil with the devnet deployment, real nats-server, the real
submit process. Before, it subscribed to the durable as it was, silently."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.settings import load_settings
from nats.js.api import AckPolicy, ConsumerConfig

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
from tests.support.stack import REPO
from tests.support.submit_world import CHAIN, config_for, module_devnet

pytestmark = pytest.mark.timeout(120)
devnet = module_devnet("consumer-refusal-devnet")


async def test_submit_on_a_durable_with_ack_policy_all_exits_2_naming_the_fix(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    spec = subjects.consumer_specs(load_settings(config))["submit"]
    durable = ConsumerConfig(
        durable_name=spec.durable, ack_policy=AckPolicy.ALL, filter_subject=spec.filter_subject
    )
    await bus.js.add_consumer(spec.stream, durable)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.submit", "--config", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=90, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.endswith(
        f"submit: refusing to start: durable consumer submit-{CHAIN} on BUNDLES has ack_policy "
        "all (config: explicit), which JetStream cannot change on a durable: stop every replica "
        f"of this stage, run `nats consumer rm BUNDLES submit-{CHAIN}`, then start them (the "
        "durable is created from the config; it delivers what BUNDLES still holds again)\n"
    )
    info = await bus.js.consumer_info(spec.stream, spec.durable)
    assert (info.config.ack_policy, info.config.max_deliver) == (AckPolicy.ALL, -1)
