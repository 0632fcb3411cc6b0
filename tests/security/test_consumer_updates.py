"""Under the shipped bus permissions (mev_common.nats_auth) a durable follows the config too:
a service may update its own stage's durable at start, and the operator's `mev-bot nats-auth
declare` brings existing durables to the config without creating any (mev_common.consumer_decl).
Real nats-server with the generated auth.conf; each client connects with one user's seed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mev_common import nats_auth
from mev_common.bus import Bus
from mev_common.consumer import PullConsumer
from mev_common.messages import Bundle
from mev_common.settings import load_settings
from mev_common.subjects import consumer_specs
from mev_ops.nats_auth_cmds import declare
from mev_ops.nats_server import EmbeddedNats

from tests.support.stack import write_config

CHAIN = 7792


async def as_user(server: EmbeddedNats, auth: Path, user: str) -> Bus:
    settings = load_settings(write_config(auth.parent / "u", server.url, CHAIN,
                                          nats={"credentials_dir": str(auth)}))  # fmt: skip
    options = nats_auth.connect_options(settings.nats, user)
    return await Bus.connect(server.url, user, timeout_s=2.0, attempts=1, options=options)


async def never(env: object) -> None:
    raise AssertionError("no message is published")


async def test_submit_updates_its_durable_and_the_operator_declare_does_too(
    secured_server: tuple[EmbeddedNats, Path], tmp_path: Path
) -> None:
    server, auth = secured_server

    def settings_with(max_deliver: int, ack_wait_s: float):  # type: ignore[no-untyped-def]
        nats = {"credentials_dir": str(auth), "max_deliver": max_deliver, "ack_wait_s": ack_wait_s}
        return load_settings(
            write_config(tmp_path / f"c{max_deliver}", server.url, CHAIN, nats=nats)
        )

    assert await declare(settings_with(5, 30.0)) == 0  # streams; no durable is created
    submit = await as_user(server, auth, "submit")
    operator = await as_user(server, auth, "operator")
    spec = consumer_specs(settings_with(5, 30.0))["submit"]
    try:
        assert await _names(operator, spec.stream) == []
        for max_deliver, ack_wait_s in ((5, 30.0), (2, 7.5)):  # created, then a restart
            consumer = PullConsumer(
                bus=submit, spec=spec, model=Bundle, handler=never, stage="submit",
                chain_id=CHAIN, max_deliver=max_deliver, ack_wait_s=ack_wait_s,
            )  # fmt: skip
            await (await consumer.subscribe()).unsubscribe()
        info = await submit.js.consumer_info(spec.stream, spec.durable)
        assert (info.config.max_deliver, info.config.ack_wait) == (2, 7.5)
        assert await declare(settings_with(3, 12.0)) == 0  # the operator, after a config edit
        info = await submit.js.consumer_info(spec.stream, spec.durable)
        assert (info.config.max_deliver, info.config.ack_wait) == (3, 12.0)
        assert await _names(operator, spec.stream) == [spec.durable]  # declare created none
    finally:
        await submit.close()
        await operator.close()


async def _names(bus: Bus, stream: str) -> list[str]:
    """Every consumer of `stream` (the operator may list them; a service may not)."""
    return sorted(info.name for info in await asyncio.wait_for(bus.js.consumers_info(stream), 5))
