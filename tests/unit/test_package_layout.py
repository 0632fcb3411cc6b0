"""The house's rooms and the one direction of their doors (issue 16, DESIGN §3).

`mev_common` (libs/common) is the runtime every service uses; `mev_ops` (libs/ops) is the operator
and devnet tooling, which imports the runtime and the services, never the other way. Each
pyproject declares exactly the distributions its code imports, so a package installs on its own.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "libs/common/mev_common"
OPS = ROOT / "libs/ops/mev_ops"
SERVICES = ROOT / "services"
FIRST_PARTY = {"mev_common": "mev-common", "mev_ops": "mev-ops", "services": "mev-pipeline"}
PACKAGES = {  # pyproject -> (source folder, its own import name)
    "libs/common/pyproject.toml": (RUNTIME, "mev_common"),
    "libs/ops/pyproject.toml": (OPS, "mev_ops"),
    "pyproject.toml": (SERVICES, "services"),
}


def imports(folder: Path) -> Iterator[tuple[str, str]]:
    """(top-level module, "file:line") for every absolute import, lazy ones included."""
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                yield name.split(".")[0], f"{shown}:{node.lineno}"


def offenders(folder: Path, forbidden: set[str]) -> list[str]:
    return [f"{where} imports {top}" for top, where in imports(folder) if top in forbidden]


@pytest.mark.parametrize("folder", [SERVICES, RUNTIME], ids=["services", "runtime"])
def test_services_and_runtime_never_import_the_operator_package(folder: Path) -> None:
    assert offenders(folder, {"mev_ops"}) == []


def test_runtime_imports_no_service_no_web3_and_starts_no_process() -> None:
    # web3 is the devnet's; subprocess is what starts servers (nats-server, anvil, the stack).
    assert offenders(RUNTIME, {"services", "web3", "subprocess"}) == []


def test_the_layout_check_sees_a_lazy_forbidden_import(tmp_path: Path) -> None:
    leak = tmp_path / "leak.py"
    leak.write_text("def f() -> None:\n    from mev_ops.stack import run_stack\n")
    assert offenders(tmp_path, {"mev_ops"}) == [f"{leak}:2 imports mev_ops"]


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def candidates(folder: Path, own: str) -> dict[str, set[str]]:
    """Each imported non-stdlib module -> the distributions that may provide it."""
    dists = md.packages_distributions()
    out: dict[str, set[str]] = {}
    for top, where in imports(folder):
        if top == own or top in sys.stdlib_module_names:
            continue
        if top in FIRST_PARTY:
            provided = {FIRST_PARTY[top]}
        else:
            provided = {canon(d) for d in dists.get(top, [])}
        assert provided, f"{where}: no installed distribution provides {top}"
        out[top] = provided
    return out


@pytest.mark.parametrize("pyproject", sorted(PACKAGES))
def test_each_pyproject_declares_exactly_what_its_code_imports(pyproject: str) -> None:
    folder, own = PACKAGES[pyproject]
    project = tomllib.loads((ROOT / pyproject).read_text())["project"]
    declared = {canon(re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0]) for d in project["dependencies"]}
    needed = candidates(folder, own)
    missing = sorted(top for top, dists in needed.items() if not dists & declared)
    unused = sorted(d for d in declared if not any(d in dists for dists in needed.values()))
    assert (missing, unused) == ([], []), f"{pyproject}: undeclared imports, unused dependencies"


def test_mev_bot_is_the_operator_package_cli() -> None:
    [script] = md.entry_points(group="console_scripts", name="mev-bot")
    assert (script.value, canon(script.dist.name) if script.dist else None) == (
        "mev_ops.cli:main",
        "mev-ops",
    )
