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


def _write(path: Path, data: dict[str, object]) -> Path:
    import tomli_w

    path.write_text(tomli_w.dumps(data))
    return path


# K80 runs no jax build (JAX-INSTALL: CUDA 12 plugins, CC >= 5.2), and driver 470 runs no CUDA
# 12 (CUDA-RN table 2): two independent conflicts, so every way out relaxes two requirements.
TWO_CONFLICTS = {
    "environment": {"name": "two"},
    "frameworks": {"jax[cuda12]": "*"},
    "targets": {"gpus": ["K80", "H100"], "driver": "470.57.02"},
}


def test_unsatisfiable_text_shows_each_conflict_its_facts_and_ways_out(tmp_path):
    r = envctl("solve", str(_write(tmp_path / "two.toml", TWO_CONFLICTS)))
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    heads = [line for line in lines if line.startswith("conflicting requirements (")]
    assert len(heads) >= 2 and "(1 of " in heads[0]
    assert any("targets.gpus.K80" in h for h in heads) and any("targets.driver" in h for h in heads)
    assert any(line.startswith("  because ") for line in lines)
    ways = [i for i, line in enumerate(lines) if line.startswith("way out: ")]
    assert ways and all(lines[i + 1].startswith("  -> ") for i in ways)
    assert lines[-2].startswith("error: no stack satisfies") and lines[-1].startswith("hint: ")
    assert lines.index(heads[0]) < ways[0] < len(lines) - 2  # the explanation before the error


def test_unsatisfiable_json_fixes_solve_once_applied_to_the_file(tmp_path):
    import tomllib

    path = _write(tmp_path / "two.toml", TWO_CONFLICTS)
    r = envctl("solve", str(path), "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    explanation = doc["explanation"]
    assert [c["independent"] for c in explanation["conflicts"]][:2] == [True, True]
    assert explanation["conflict"] == explanation["conflicts"][0]["requirements"]
    assert explanation["ways_out"] == [f["change"] for f in explanation["fixes"]]
    assert doc["hint"] == "; or ".join(explanation["ways_out"])
    assert explanation["fixes"]
    for i, fix in enumerate(explanation["fixes"]):
        assert len(fix["relax"]) == 2
        data = tomllib.loads(path.read_text())
        for edit in fix["set"]:
            section, _, key = edit["key"].partition(".")
            if edit["value"] is None:
                data[section].pop(key)
            else:
                data.setdefault(section, {})[key] = edit["value"]
        fixed = envctl("solve", str(_write(tmp_path / f"fixed{i}.toml", data)), "--json")
        assert fixed.returncode == 0, (fix, fixed.stdout, fixed.stderr)
        solution = json.loads(fixed.stdout)
        got = {f["name"]: f["version"] for f in solution["frameworks"]}
        assert {n: v.split()[0] for n, v in fix["solves_to"]["frameworks"].items()} == got
        assert (solution["cuda"], solution["min_driver"]) == (
            fix["solves_to"]["cuda"],
            fix["solves_to"]["min_driver"],
        )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--single"], "--limit, --single and --refresh need -i/--inventory"),
        (["-i", "inv.toml", "--driver", "550.54.15"], "-i takes --gpu/--driver/--arch from the nodes"),
    ],
)
def test_solve_from_nodes_options_are_checked(profile: Path, args: list[str], says: str) -> None:
    result = envctl("solve", str(profile), *args)
    assert result.returncode == 2 and says in result.stderr


def test_solve_from_nodes_names_a_missing_inventory(profile: Path, tmp_path: Path) -> None:
    result = envctl("solve", str(profile), "-i", str(tmp_path / "none.toml"))
    assert result.returncode == 2 and "none.toml" in result.stderr, result.stderr
