"""Where deploy/compose's files are, and the tools their tests need (installed by make setup)."""

from __future__ import annotations

import shutil

import pytest

from tests.support.stack import REPO

COMPOSE = REPO / "deploy/compose"
PROM = COMPOSE / "prometheus"


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:  # make setup installs it from deploy/apt-packages.txt
        pytest.skip(f"{binary} not installed (make setup installs it)")
    return path
