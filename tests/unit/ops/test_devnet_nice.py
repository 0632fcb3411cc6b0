"""`devnet.nice`: `mev-bot run` starts the devnet's swap flow below the bot's services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from mev_common.settings import ConfigError, load_settings
from mev_ops.cli import build_parser
from mev_ops.devnet.priority import AUTOGROUP
from mev_ops.stack import flow_command

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _no_mev_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.upper().startswith("MEV_")]:
        monkeypatch.delenv(name)


def devnet_config(tmp_path: Path, nice: Any) -> Path:
    config = yaml.safe_load((REPO / "config/devnet.yaml").read_text())
    config["devnet"]["nice"] = nice
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_devnet_runs_at_niceness_10_by_default() -> None:
    settings = load_settings(REPO / "config/devnet.yaml")
    assert settings.devnet is not None and settings.devnet.nice == 10


@pytest.mark.parametrize(
    ("nice", "problem"),
    [
        (20, "devnet.nice: got 20; expected a number <= 19"),
        (-1, "devnet.nice: got -1; expected a number >= 0"),
        ("low", "devnet.nice: got 'low'; expected an integer"),
    ],
)
def test_a_niceness_out_of_range_is_refused(tmp_path: Path, nice: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(devnet_config(tmp_path, nice))
    assert err.value.problems == [problem]


PROBE = (
    "import os, pathlib, sys; from mev_ops.devnet.priority import lower_priority; "
    "lower_priority(int(sys.argv[1])); p = pathlib.Path('/proc/self/autogroup'); "
    "print(os.nice(0), p.read_text().split()[-1] if p.exists() else '-')"
)


def lowered(nice: int, **popen: Any) -> tuple[int, str]:
    """(nice value, its session's autogroup nice) of a child that called lower_priority."""
    child = subprocess.run(
        [sys.executable, "-c", PROBE, str(nice)],
        capture_output=True,
        text=True,
        check=True,
        **popen,
    )
    value, group = child.stdout.split()
    return int(value), group


def test_the_flow_lowers_itself_and_the_session_it_leads() -> None:
    """`mev-bot run` starts the flow in a session of its own; where the kernel groups tasks by
    session, the session's autogroup is lowered too, else its nice value would not act."""
    ours = os.nice(0)
    assert lowered(3, start_new_session=True) == (
        min(19, ours + 3),
        "3" if AUTOGROUP.exists() else "-",
    )
    assert lowered(0, start_new_session=True) == (ours, "0" if AUTOGROUP.exists() else "-")


def test_a_flow_that_does_not_lead_its_session_leaves_the_session_alone() -> None:
    """`mev-bot devnet flow --nice` from a shell: the shell's session (here a throwaway one,
    led by the outer child) keeps its autogroup's nice value."""
    outer = (
        "import subprocess, sys; "
        f"subprocess.run([sys.executable, '-c', {PROBE!r}, '4'], check=True)"
    )
    child = subprocess.run(
        [sys.executable, "-c", outer],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    value, group = child.stdout.split()
    assert int(value) == min(19, os.nice(0) + 4)
    assert group == ("0" if AUTOGROUP.exists() else "-")


def test_make_run_starts_the_flow_with_devnet_nice(tmp_path: Path) -> None:
    config = devnet_config(tmp_path, 7)
    command = flow_command(load_settings(config), config)
    assert command[-2:] == ["--nice", "7"]
    assert build_parser().parse_args(command[3:]).nice == 7


def test_the_flow_refuses_a_niceness_out_of_range() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["devnet", "flow", "--nice", "20"])
