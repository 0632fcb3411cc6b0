"""Deploy the devnet contracts to the compose `anvil` service (once), for `--profile devnet`.

`mev-bot devnet up` starts its own anvil on 127.0.0.1; in compose anvil is another container,
so this calls the same deploy function against it. Idempotent: a deployment already on this
chain (its executor has code) is kept, so restarts do not redeploy.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

from mev_common.settings import load_settings
from mev_ops.devnet.deploy import deploy_devnet


def rpc(url: str, method: str, params: list[object]) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())["result"]


def main() -> int:
    settings = load_settings()
    url = settings.chain.rpc_endpoints[0].url
    out = Path(settings.contracts.deployment_file or "/data/devnet/deployment.json")
    if out.is_file():
        executor = json.loads(out.read_text())["executor"]["address"]
        if rpc(url, "eth_getCode", [executor, "latest"]) not in ("0x", None):
            print(f"devnet already deployed: {out}")
            return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    seed = settings.devnet.seed if settings.devnet else 1
    deploy_devnet(url, settings.chain.chain_id, seed, Path(settings.keys.path), out, block_time=1)
    print(f"devnet deployed: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
