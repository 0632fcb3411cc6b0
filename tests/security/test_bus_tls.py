"""The bus over TLS (issue 11): with the configured CA a service connects and publishes; with
the system CAs only, the connection fails on the certificate. Real nats-server, a throwaway CA
made by the openssl CLI."""

from __future__ import annotations

import functools
import shutil
import ssl
import subprocess
from pathlib import Path

import nats
import pytest
from mev_common import nats_auth, subjects
from mev_common.bus import Bus
from mev_common.settings import load_settings
from mev_ops.nats_auth_cmds import declare
from mev_ops.nats_server import start_embedded_nats

from tests.security.test_bus_permissions import CHAIN, forged_bundle
from tests.support.stack import write_config


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, by the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = functools.partial(subprocess.run, check=True, capture_output=True)
    run([openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "1",
         "-subj", "/CN=mev-test-ca"])  # fmt: skip
    run([openssl, "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"])
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run([openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "1", "-extfile", ext])  # fmt: skip
    return ca, cert, key


async def test_tls_with_the_configured_ca_connects_and_without_it_fails(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    server = start_embedded_nats(
        store_dir=tmp_path / "nats",
        auth_dir=tmp_path / "auth",
        extra_conf=f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n}}\n',
    )
    try:
        url = f"tls://127.0.0.1:{server.port}"
        config = write_config(
            tmp_path / "cfg",
            url,
            CHAIN,
            nats={"credentials_dir": str(tmp_path / "auth"), "tls": {"ca_file": str(ca)}},
        )
        settings = load_settings(config)
        assert await declare(settings) == 0  # Bus.connect over TLS as the operator
        ok = await Bus.connect(
            url,
            "simulate",
            attempts=1,
            options=nats_auth.connect_options(settings.nats, "simulate"),
        )
        try:
            assert ok.nc.is_connected
            ack = await ok.js.publish(subjects.bundles(CHAIN), forged_bundle())
            assert ack.stream == "BUNDLES" and ack.seq == 1
        finally:
            await ok.close()
        no_ca = settings.nats.model_copy(update={"tls": None})  # system CAs only
        with pytest.raises(ssl.SSLCertVerificationError, match="CERTIFICATE_VERIFY_FAILED"):
            await nats.connect(
                url,
                allow_reconnect=False,
                connect_timeout=2,
                **nats_auth.connect_options(no_ca, "simulate"),
            )
    finally:
        server.cleanup()
