"""Usage errors exit 2 with argparse's message; durations parse as operators type them."""

from __future__ import annotations

import pytest
from mev_ops.cli import build_parser, main
from mev_ops.duration import parse_duration

ARG = "argument "


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60s", 60.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25), ("90", 90.0), ("1.5m", 90.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "-1s", "0s", "m5", "5 minutes"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--adjust-rpc-rate", "0"],
            ARG + "--adjust-rpc-rate: rpc rate factor must be in (0, 10], got '0'",
        ),
        (
            ["--adjust-rpc-rate", "80"],
            ARG + "--adjust-rpc-rate: rpc rate factor must be in (0, 10]; 80 % is 0.8",
        ),
        (
            ["--adjust-rpc-rate", "fast"],
            ARG + "--adjust-rpc-rate: rpc rate factor must be a number in (0, 10], got 'fast'",
        ),
        (
            ["--adjust-rpc-pool-size", "0"],
            ARG + "--adjust-rpc-pool-size: rpc pool size must be in [1, 1000], got 0",
        ),
        (
            ["--adjust-rpc-pool-size", "2.5"],
            ARG + "--adjust-rpc-pool-size: rpc pool size must be a whole number in [1, 1000], "
            "got '2.5'",
        ),
        (["--adjust-rpc-rate"], ARG + "--adjust-rpc-rate: expected one argument"),
        (
            ["--dry-run", "--duration", "5x"],
            ARG + "--duration: expected a duration like 60s, 5m, 1h or 250ms, got '5x'",
        ),
        (["--duration", "60s"], "--duration goes with --dry-run"),
        (
            ["--timeout", "5s", "status"],
            "--timeout goes with a control flag such as --emergency-stop",
        ),
        (
            ["--emergency-stop", "--resume"],
            ARG + "--resume: not allowed with argument --emergency-stop",
        ),
        (["--emergency-stop", "status"], "--emergency-stop takes no command"),
        (["--dry-run", "run"], "--dry-run takes no command"),
        (
            ["--emergency-stop", "--dry-run"],
            ARG + "--dry-run: not allowed with argument --emergency-stop",
        ),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["status", "--verbose-ish"], "unrecognized arguments: --verbose-ish"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mev-bot ")
    assert err.rstrip().splitlines()[-1] == f"mev-bot: error: {message}"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "mev-bot: error: give a command or a flag such as --validate-config"
    )


@pytest.mark.parametrize(
    ("argv", "config"),
    [
        (["run", "--config", "x.yaml"], "x.yaml"),  # as `make run` types it
        (["--config", "y.yaml", "run"], "y.yaml"),
        (["status", "--config", "s.yaml", "--json"], "s.yaml"),
        (["--config", "d.yaml", "devnet", "flow"], "d.yaml"),
        (["devnet", "up", "--config", "u.yaml"], "u.yaml"),
        (["run"], None),
    ],
)
def test_config_before_or_after_the_command(argv: list[str], config: str | None) -> None:
    assert build_parser().parse_args(argv).config == config
