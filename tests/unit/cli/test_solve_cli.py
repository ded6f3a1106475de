"""`envctl solve/explain/matrix` through the real entry point: exit codes, JSON, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SMALL = ROOT / "tests" / "fixtures" / "matrix_small"


def envctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envctl", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(
        '[environment]\nname = "p"\n[frameworks]\ntorch = ">=2.4"\n[targets]\ngpus = ["H100"]\ndriver = "550.54.15"\n'
    )
    return path


def test_solve_json_is_stable_schema(profile):
    r = envctl("solve", str(profile), "--matrix", str(SMALL), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["ok"] is True and data["schema"] == "envctl.solution/1"
    assert data["cuda"] == "12.8" and data["min_driver"] == "525.60.13"
    assert data["frameworks"][0]["builds"]["linux-64"]["requirement"] == "torch==2.10.0"


def test_solve_table(profile):
    r = envctl("solve", str(profile), "--matrix", str(SMALL))
    assert r.returncode == 0, r.stderr
    assert "torch==2.10.0" in r.stdout and "12.8" in r.stdout


def test_unsatisfiable_exits_1_with_explanation(profile):
    r = envctl("solve", str(profile), "--matrix", str(SMALL), "--gpu", "K80", "--gpu", "B200")
    assert r.returncode == 1
    assert "error: no stack satisfies" in r.stderr and "hint:" in r.stderr
    assert "Traceback" not in r.stderr
    j = envctl(
        "solve", str(profile), "--matrix", str(SMALL), "--gpu", "B200", "--driver", "470.57.02", "--json"
    )
    assert j.returncode == 1
    data = json.loads(j.stdout)
    assert data["ok"] is False and data["explanation"]["conflict"]
    assert (data["schema"], data["error_class"], data["exit_code"]) == (
        "envctl.error/1",
        "UnsatisfiableError",
        1,
    )
    assert "conflicting requirements" in r.stderr  # the explanation goes before the one-line error


def test_bad_input_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[environment\n")
    r = envctl("solve", str(bad), "--matrix", str(SMALL))
    assert r.returncode == 2
    assert str(bad) in r.stderr and "malformed TOML" in r.stderr
    assert "Traceback" not in r.stderr
    r = envctl("solve", str(tmp_path / "missing.toml"), "--matrix", str(SMALL))
    assert r.returncode == 2 and "no such profile" in r.stderr
    r = envctl("solve", str(bad), "--matrix", str(tmp_path))
    assert r.returncode == 2 and "no such matrix file" in r.stderr


def test_debug_shows_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[environment\n")
    r = envctl("--debug", "solve", str(bad), "--matrix", str(SMALL))
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_explain_lists_decisions(profile):
    r = envctl("explain", str(profile), "--matrix", str(SMALL), "--json")
    assert r.returncode == 0, r.stderr
    subjects = {d["subject"] for d in json.loads(r.stdout)["decisions"]}
    assert {"torch", "cuda", "driver", "python", "cudnn", "blas"} <= subjects


def test_matrix_validate_and_show():
    r = envctl("matrix", "validate", "--matrix", str(SMALL), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True
    r = envctl("matrix", "show", "torch", "--matrix", str(SMALL), "--json")
    rows = json.loads(r.stdout)["rows"]
    assert any(row["variant"] == "cu118" and row["index"] == "pytorch-cu118" for row in rows)
    r = envctl("matrix", "show", "gpus", "--matrix", str(SMALL))
    assert "NVIDIA H100 80GB HBM3" in r.stdout
    r = envctl("matrix", "show", "mxnet", "--matrix", str(SMALL))
    assert r.returncode == 2 and "unknown subject" in r.stderr


def test_usage_error_exits_2():
    r = envctl("solve")
    assert r.returncode == 2
