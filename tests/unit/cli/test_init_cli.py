"""``envctl init`` through the click command: the profile it writes solves, targets asked for or
given, outputs never replaced unasked; and frameworks under [packages] pip are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from envctl.cli import cli

ROOT = Path(__file__).resolve().parents[3]
SMALL = ROOT / "tests" / "fixtures" / "matrix_small"


def envctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envctl", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_init_from_requirements_writes_a_profile_that_solves_for_the_gpu(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("torch==2.10.0+cu128\nnumpy>=1.26\n")
    r = envctl("init", "requirements.txt", "--gpu", "H100", "--driver", "550.54.15", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["schema"] == "envctl.init/1" and data["ok"] is True
    assert data["frameworks"] == {"torch": "==2.10.0"} and data["pip"] == 1
    assert data["moved"] == ["torch==2.10.0+cu128 -> [frameworks] torch"]
    solved = envctl("solve", "profile.toml", "--matrix", str(SMALL), "--json", cwd=tmp_path)
    assert solved.returncode == 0, solved.stderr
    solution = json.loads(solved.stdout)
    assert (
        solution["cuda"] and solution["frameworks"][0]["builds"]["linux-64"]["requirement"] == "torch==2.10.0"
    )
    # the output is the user's now: a second init does not replace it
    again = envctl("init", "requirements.txt", cwd=tmp_path)
    assert again.returncode == 2 and "profile.toml: already exists" in again.stderr
    assert "--force" in again.stderr


def test_init_asks_for_the_targets_on_a_terminal(tmp_path: Path) -> None:
    source = tmp_path / "environment.yml"
    source.write_text("name: e\ndependencies:\n  - python=3.11\n  - pytorch=2.4\n")
    out = tmp_path / "p.toml"
    result = CliRunner().invoke(
        cli, ["init", str(source), "-o", str(out), "--ask"], input="aarch64\nGH200\n560.28.03\n"
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert 'arch = [\n    "aarch64",\n]' in text and '"GH200"' in text and 'driver = "560.28.03"' in text
    assert "moved pytorch=2.4 -> [frameworks] torch" in result.output


def test_init_without_a_terminal_asks_nothing_and_says_cpu_only(tmp_path: Path) -> None:
    source = tmp_path / "requirements.txt"
    source.write_text("jax>=0.4.30\n")
    result = CliRunner().invoke(cli, ["init", str(source), "-o", str(tmp_path / "p.toml")])
    assert result.exit_code == 0, result.output
    assert "no GPUs named: the frameworks are solved CPU-only" in result.output


def test_torch_under_packages_pip_is_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(
        '[environment]\nname = "p"\n[packages]\npip = ["numpy", "torch==2.10.0"]\n[targets]\ngpus = ["H100"]\n'
    )
    r = envctl("solve", "p.toml", "--matrix", str(SMALL), cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[0] == (
        "error: p.toml: packages.pip: 'torch==2.10.0' is a framework: under [packages] pip it "
        "bypasses the CUDA/driver solver and the stack comes out CPU-only"
    )
    assert (
        lines[1]
        == 'hint: move it to [frameworks]: torch = "==2.10.0" (`envctl init` does this for requirement files)'
    )
    (tmp_path / "p.toml").write_text('[environment]\nname = "p"\n[packages]\npip = ["jax[cuda12]>=0.4"]\n')
    r = envctl("solve", "p.toml", "--matrix", str(SMALL), cwd=tmp_path)
    assert r.returncode == 2 and 'hint: move it to [frameworks]: "jax[cuda12]" = ">=0.4"' in r.stderr
