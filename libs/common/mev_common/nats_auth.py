"""Who may speak on the bus (DESIGN §2), as data: NATS users, their permissions, credentials.

Credentials are NATS nkeys (Ed25519), one seed file per user, `<dir>/<user>.nk`, mode 0600.
Why nkeys and not user+password: the server config holds only public keys, so the generated
`auth.conf` is no secret (compose ships and mounts it as is, logs may show it), the seed never
crosses the wire (the server sends a nonce, the client signs it), and rotating one user is one
new file plus a server reload. The file name is the user: the client derives its inbox prefix
(`_INBOX_<user>`) from it, so a user reads only replies addressed to it.

What each service can still do (everything else is refused by nats-server):
- publish its own pipeline subjects (ingest: blocks, mempool; detect: opportunities,
  withdrawals; simulate: bundles; submit: outcomes) and dead letters of its own stage; submit
  also publishes bundles, only the copies of those it hands back on their last allowed
  delivery (mev_common.hand_back): no new power, as submit refuses a forged bundle by itself
  (a compromised simulate's) and holds the keys anyway;
- read stream and KV metadata and single messages of any stream, consume the streams it reads
  (create/inspect/delete consumers on those streams, fetch, ack), watch the `mev-control` bucket;
  subscribe to the core subjects it follows as they are published (submit: withdrawals;
  simulate: mempool, for early victim traces);
- write its own heartbeat (`<chain>.instances.<service>.*`) and the ack keys of the control
  keys it applies (submit: emergency_stop, nonce_reset; every service: rpc_rate_factor,
  rpc_pool_size); submit also writes its lease bucket and `<chain>.genesis` (the chain
  instance its ledger is bound to).
Services can neither create, update, purge nor delete any stream or bucket: a stream's config
can republish or source messages into another stream (such as the control bucket), which would
bypass the subject permissions. The operator declares streams and buckets (`declare_bus`,
run by `mev-bot run` and `mev-bot nats-auth declare`); services only check they exist.
Services create their stage's durable consumers and bring them to the config at start
(mev_common.consumer_decl); the operator's declare does the latter too.
Still possible for a compromised service, by design or left to other layers: flooding its own
subjects (submit validates every bundle and caps cancels), deleting or adding consumers on the
streams it reads (a push consumer's deliveries do not reach the control bucket: tested), and
reading any stream. The operator (`mev-bot`, nats-box) uses the JetStream API, writes every KV
key and reads everything, but publishes no pipeline subject.
"""

from __future__ import annotations

import os
import re
import secrets
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.js.errors
import nkeys
from nats.js.api import KeyValueConfig, StorageType

from mev_common.bus import Bus
from mev_common.consumer_decl import consumer_config, declare_consumer
from mev_common.control import (
    EMERGENCY_STOP,
    NONCE_RESET,
    RPC_POOL_SIZE,
    RPC_RATE_FACTOR,
    ensure_control_bucket,
)
from mev_common.elections import CONSUMER_LEADER_ELECTED, LEADER_ELECTED
from mev_common.settings import NatsSettings, Settings
from mev_common.subjects import CONTROL_BUCKET, consumer_specs, stream_specs

SERVICES = ("ingest", "detect", "simulate", "submit")
OPERATOR = "operator"
USERS = (*SERVICES, OPERATOR)
SEED_SUFFIX = ".nk"
AUTH_CONF = "auth.conf"
DEFAULT_DIR = "data/nats-auth"
LEASE_BUCKET = "mev-submit-lease"  # services/submit/lease.py owns it; a unit test keeps them equal
LEASE_TTL_S = 3.0

# Pipeline subjects each service publishes (chain wildcard), DESIGN §2.
PUBLISHES: dict[str, tuple[str, ...]] = {
    "ingest": ("mev.*.blocks", "mev.*.mempool"),
    "detect": ("mev.*.opportunities.>", "mev.*.withdrawals", "mev.*.detect.>"),
    "simulate": ("mev.*.bundles",),
    "submit": ("mev.*.outcomes", "mev.*.bundles"),  # bundles: a hand-back's copy
}
# Streams each service consumes, and core subjects it subscribes to.
CONSUMES: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "detect": ("MEMPOOL", "BLOCKS"),
    "simulate": ("OPPORTUNITIES", "BLOCKS"),
    "submit": ("BUNDLES", "BLOCKS"),
}
CORE_SUBSCRIBES: dict[str, tuple[str, ...]] = {
    # replicas ask each other what they decided (services/detect/peer_bets.py)
    "detect": ("mev.*.detect.>",),
    "submit": ("mev.*.withdrawals",),
    # a hint: a pending swap's victim traced when seen (services/simulate/victims.py); refused,
    # the subscription failed silently under `make run` and every backrun waited for its trace
    "simulate": ("mev.*.mempool",),
}
# The control keys a service applies and acknowledges (ops/control_cmds.py: acked_by).
_RPC_KEYS = (RPC_RATE_FACTOR, RPC_POOL_SIZE)  # every service with an RPC pool applies them
ACKNOWLEDGES: dict[str, tuple[str, ...]] = {
    "ingest": _RPC_KEYS,
    "detect": _RPC_KEYS,
    "simulate": _RPC_KEYS,
    "submit": (EMERGENCY_STOP, NONCE_RESET, *_RPC_KEYS),
}
# Dead-letter stages besides the service's own name (a unit test reads them from services/).
DEAD_STAGES: dict[str, tuple[str, ...]] = {"submit": ("submit-blocks",)}
# Control-bucket keys a service owns (submit records the chain's genesis beside the controls).
OWN_CONTROL_KEYS: dict[str, tuple[str, ...]] = {"submit": ("genesis",)}
# Other KV buckets a service owns and writes.
OWN_BUCKETS: dict[str, tuple[str, ...]] = {"submit": (LEASE_BUCKET,)}

_SEED = re.compile(r"\bS[A-Z][A-Z2-7]{56}\b")


class NatsAuthError(Exception):
    """A credential or TLS file is missing or unsafe: the message names the key and the fix."""


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def inbox_prefix(user: str) -> str:
    return f"_INBOX_{user}"


def _kv(bucket: str, key: str = ">") -> str:
    return f"$KV.{bucket}.{key}"


def _consume(stream: str) -> tuple[str, ...]:
    """What reading one stream takes: consumer create/info/delete, fetch, ack, flow control."""
    api = "$JS.API.CONSUMER"
    return (
        f"{api}.CREATE.{stream}",
        f"{api}.CREATE.{stream}.>",
        f"{api}.DURABLE.CREATE.{stream}.>",
        f"{api}.INFO.{stream}.>",
        f"{api}.DELETE.{stream}.>",
        f"{api}.MSG.NEXT.{stream}.>",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    )


def _read_bucket(bucket: str) -> tuple[str, ...]:
    return _consume(f"KV_{bucket}")


def permissions(user: str) -> Permissions:
    """The allow lists of one user; anything not listed is refused."""
    if user == OPERATOR:
        return Permissions(
            publish=("$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>"),
            subscribe=(">",),
        )
    if user not in SERVICES:
        raise ValueError(f"unknown NATS user {user!r}; expected one of {', '.join(USERS)}")
    publish = [
        *PUBLISHES[user],
        *(f"mev.*.dead.{stage}" for stage in (user, *DEAD_STAGES.get(user, ()))),
        "$JS.API.INFO",
        "$JS.API.STREAM.NAMES",
        "$JS.API.STREAM.INFO.*",
        "$JS.API.STREAM.MSG.GET.*",  # read one message (ingest resumes after the last block)
        "$JS.API.DIRECT.GET.>",  # KV get
        *_read_bucket(CONTROL_BUCKET),
        _kv(CONTROL_BUCKET, f"*.instances.{user}.>"),
        *(_kv(CONTROL_BUCKET, f"*.ack.{key}.>") for key in ACKNOWLEDGES.get(user, ())),
        *(_kv(CONTROL_BUCKET, f"*.{key}") for key in OWN_CONTROL_KEYS.get(user, ())),
    ]
    for stream in CONSUMES[user]:
        publish.extend(_consume(stream))
    for bucket in OWN_BUCKETS.get(user, ()):
        publish.extend((*_read_bucket(bucket), _kv(bucket)))
    # leader advisories (metadata only) let consumers resume fast after a node loss
    elected = (LEADER_ELECTED, CONSUMER_LEADER_ELECTED)
    subscribe = (f"{inbox_prefix(user)}.>", *elected, *CORE_SUBSCRIBES.get(user, ()))
    return Permissions(publish=tuple(dict.fromkeys(publish)), subscribe=subscribe)


# ---- credentials ----------------------------------------------------------------------------


def seed_path(directory: Path, user: str) -> Path:
    return directory / f"{user}{SEED_SUFFIX}"


def new_seed() -> bytes:
    return bytes(nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER))


def _write_private(path: Path, data: bytes) -> None:
    """Create (or replace) a file readable by its owner only, without a moment of wider mode."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_credentials(directory: Path, users: tuple[str, ...] = USERS) -> dict[str, Path]:
    """One seed file per user under `directory` (0700), created once and reused after."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    paths = {}
    for user in users:
        path = seed_path(directory, user)
        if not path.exists():
            _write_private(path, new_seed() + b"\n")
        paths[user] = path
    write_server_config(directory)
    return paths


def rotate(directory: Path, user: str) -> Path:
    """A new seed for one user and a new auth.conf: reload the server, restart that service."""
    permissions(user)  # refuse unknown users before touching anything
    path = seed_path(directory, user)
    _write_private(path, new_seed() + b"\n")
    write_server_config(directory)
    return path


def read_seed(path: Path) -> bytes:
    """The seed, after checking the file is private; the error names the file, never its text."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NatsAuthError(
            f"NATS credential {path} not found: run `mev-bot nats-auth init` "
            "(nats.credentials_dir / nats.credentials_file)"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise NatsAuthError(
            f"NATS credential {path} is readable by others (mode {stat.S_IMODE(mode):o}): "
            f"chmod 600 {path}"
        )
    return path.read_bytes().strip()


def public_key(path: Path) -> str:
    kp = nkeys.from_seed(bytearray(read_seed(path)))
    try:
        return str(kp.public_key.decode())
    finally:
        kp.wipe()


def server_auth_block(public_keys: Mapping[str, str]) -> str:
    """The nats-server `authorization` block: one nkey user per entry, with its allow lists."""

    def quoted(items: tuple[str, ...]) -> str:
        return ", ".join(f'"{s}"' for s in items)

    lines = ["authorization {", "  users = ["]
    for user, key in public_keys.items():
        perms = permissions(user)
        lines += [
            f"    # {user}",
            f'    {{ nkey: "{key}", permissions: {{',
            f"        publish: {{ allow: [{quoted(perms.publish)}] }}",
            f"        subscribe: {{ allow: [{quoted(perms.subscribe)}] }}",
            "    } }",
        ]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def write_server_config(directory: Path) -> Path:
    """`<dir>/auth.conf` from the seeds present (public keys only; not a secret)."""
    keys = {
        u: public_key(seed_path(directory, u)) for u in USERS if seed_path(directory, u).exists()
    }
    conf = directory / AUTH_CONF
    conf.write_text(
        "# Generated by `mev-bot nats-auth init` from mev_common/nats_auth.py: do not edit.\n"
        + server_auth_block(keys)
    )
    return conf


# ---- client side ----------------------------------------------------------------------------


def credential_for(nats: NatsSettings, user: str) -> Path | None:
    """`nats.credentials_file` if set, else `<nats.credentials_dir>/<user>.nk`, else no auth."""
    if nats.credentials_file:
        return Path(nats.credentials_file)
    if nats.credentials_dir:
        return seed_path(Path(nats.credentials_dir), user)
    return None


def tls_context(nats: NatsSettings) -> ssl.SSLContext | None:
    tls = nats.tls
    if tls is None:
        return ssl.create_default_context() if nats.url.startswith("tls://") else None
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(tls, key)
        if value and not Path(value).is_file():
            raise NatsAuthError(f"nats.tls.{key}: file {value} not found")
    ctx = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    return ctx


def connect_options(nats: NatsSettings, user: str) -> dict[str, Any]:
    """Keyword arguments for `nats.connect`: this user's seed file, inbox prefix and TLS.
    The user of a `credentials_file` is its file name (`detect.nk` -> detect)."""
    options: dict[str, Any] = {}
    path = credential_for(nats, user)
    if path is not None:
        read_seed(path)  # fail now, with the fix, rather than as an auth timeout
        options["nkeys_seed"] = str(path)
        options["inbox_prefix"] = inbox_prefix(path.name.removesuffix(SEED_SUFFIX))
    ctx = tls_context(nats)
    if ctx is not None:
        options["tls"] = ctx
    return options


def mask_secrets(text: str) -> str:
    """Replace every nkey seed in a log line or error message."""
    return _SEED.sub("S***", text)


# ---- declaration (operator) -----------------------------------------------------------------


async def declare_bus(bus: Bus, settings: Settings) -> None:
    """Create or update every stream and bucket: the operator's job, since services may not;
    and bring the stages' durable consumers that exist to the config (services create them,
    and update them at start when allowed: mev_common.consumer_decl). `ConsumerMismatch` for
    a durable JetStream cannot bring to it."""
    js = bus.js
    await bus.ensure_streams(stream_specs(settings))
    limits = settings.nats
    for spec in consumer_specs(settings).values():
        want = consumer_config(spec, limits.max_deliver, limits.ack_wait_s)
        await declare_consumer(js, spec, want, create=False)
    replicas = settings.nats.replicas  # R1 buckets on a cluster die with their one node
    await ensure_control_bucket(js, replicas)
    try:
        await js.key_value(LEASE_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        await js.create_key_value(
            KeyValueConfig(
                bucket=LEASE_BUCKET,
                history=1,
                ttl=LEASE_TTL_S,
                storage=StorageType.FILE,
                replicas=replicas,
            )
        )
