"""Fixtures for the node-side unit tests: a temp store, a local 'node', tiny OCI layouts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))

from nd_local import LocalTransport
from nd_oci import app_layers, write_layout

from envctl.adapters.oci_image import OciImage, read_image
from envctl.core.delivery import NodeTarget


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def image(tmp_path: Path) -> OciImage:
    write_layout(tmp_path / "img1", app_layers("1"))
    return read_image(tmp_path / "img1")


@pytest.fixture
def target(tmp_path: Path) -> NodeTarget:
    return NodeTarget("n1", "prefix", str(tmp_path / "n1" / "store"), str(tmp_path / "n1" / "envs"))


@pytest.fixture
def transport() -> LocalTransport:
    return LocalTransport("n1")
