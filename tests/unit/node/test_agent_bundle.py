"""The agent zip carries every module its subcommands need and runs on a bare python3."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

import envctl.node
from envctl.node.bundle import agent_bundle

SUBCOMMANDS = (
    "have", "receive", "verify", "epoch", "claim", "prepare", "switch", "restore", "rollback", "state", "gc",
)  # fmt: skip


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    path = tmp_path / agent_bundle().filename
    path.write_bytes(agent_bundle().data)
    return path


def run(agent: Path, tmp_path: Path, *args: str, stdin: str = "") -> dict[str, object]:
    # -I -S: no site-packages, no PYTHONPATH, no current directory; only the zip itself
    r = subprocess.run(
        [sys.executable, "-I", "-S", str(agent), "--store", str(tmp_path / "store"),
         "--prefix-root", str(tmp_path / "envs"), *args],
        input=stdin, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return dict(json.loads(r.stdout))


def test_every_subcommand_module_travels_in_the_zip(agent: Path, tmp_path: Path) -> None:
    # each call imports the agent with all its subcommand modules, from the zip alone
    assert run(agent, tmp_path, "have", "sha256:" + "0" * 64)["present"] == []
    assert run(agent, tmp_path, "receive", stdin="end\n")["received"] == []
    assert run(agent, tmp_path, "state")["envs"] == {}
    assert run(agent, tmp_path, "gc")["removed_blobs"] == 0
    help_text = subprocess.run(
        [sys.executable, "-I", "-S", str(agent), "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert all(name in help_text for name in SUBCOMMANDS)


def test_a_failing_subcommand_reports_json_from_the_zip(agent: Path, tmp_path: Path) -> None:
    ballot = ["--to", "sha256:" + "0" * 64, "--generation", "1", "--token", "1" * 19 + "-" + "a" * 16]
    r = subprocess.run(
        [sys.executable, "-I", "-S", str(agent), "--store", str(tmp_path / "store"), "rollback", "web", *ballot],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 3
    assert json.loads(r.stdout) == {
        "error": "web: superseded by an operation this node has no record of",
        "kind": "superseded",
        "holder": None,
    }


def test_bundle_holds_the_package_but_the_bundler_and_is_reproducible() -> None:
    names = set(zipfile.ZipFile(BytesIO(agent_bundle().data)).namelist())
    package = Path(envctl.node.__file__).parent
    modules = {f"envctl/node/{p.name}" for p in package.glob("*.py") if p.name != "bundle.py"}
    assert names == {"__main__.py", "envctl/__init__.py", *modules}
    assert agent_bundle.__wrapped__().data == agent_bundle().data
