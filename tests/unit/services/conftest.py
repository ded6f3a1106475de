"""Fixtures for the node-side service tests: a local 'node' and a private ledger per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))

from nd_local import LocalTransport


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test writes its own ledger, never the user's."""
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def nd_transport() -> LocalTransport:
    """A LocalTransport named n1 that records the commands it ran."""
    return LocalTransport("n1")
