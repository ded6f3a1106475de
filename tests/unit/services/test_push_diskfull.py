"""A node whose disk fills: a clear error, the old environment intact, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_local import LocalPool
from nd_oci import app_layers, write_layout

from envctl.adapters.oci_layout import read_image
from envctl.core.node import NodeSpec
from envctl.services.deliver.push import PushOptions, push


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root, as the node tests do; fails rather than skips without it)."""
    where = Path(tempfile.mkdtemp(prefix="nd-full-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "nd-full", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)
        os.rmdir(where)


@pytest.mark.parametrize(("big", "phase"), [(2_000_000, "receive"), (600_000, "unpack")])
def test_disk_full_keeps_the_old_environment(tmp_path: Path, small_disk: Path, big: int, phase: str) -> None:
    t = NodeSpec(
        "n0",
        "localhost",
        runtime="prefix",
        store=str(small_disk / "store"),
        prefix_root=str(small_disk / "envs"),
    )
    write_layout(tmp_path / "v1", app_layers("1"))
    write_layout(tmp_path / "v2", app_layers("2", big=big))
    assert (
        push(
            read_image(tmp_path / "v1"),
            [t],
            LocalPool(),
            PushOptions(env="demo"),
        ).outcome
        == "all"
    )
    res = push(read_image(tmp_path / "v2"), [t], LocalPool(), PushOptions(env="demo"))
    node = res.nodes["n0"]
    assert node.status == "failed"
    assert "No space left on device" in str(node.message), phase
    envs = small_disk / "envs"
    assert (envs / "demo" / "app" / "envmod.py").read_text() == "VERSION = '1'\n"
    assert [p.name for p in envs.iterdir() if not p.name.startswith("demo")] == []  # no temp tree
    assert len([p for p in envs.iterdir() if p.name.startswith("demo@")]) == 1
    assert list((small_disk / "store" / "tmp").iterdir()) == []
