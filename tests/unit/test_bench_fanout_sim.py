"""bench/fanout_sim.py's glue: calibration arithmetic on a bench/fanout.py report, JSON, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "fanout_sim.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_calibration_reports_the_models_error_per_mode(tmp_path: Path) -> None:
    measured = {
        "schema": "envctl.bench-fanout/1",
        "nodes": 4,
        "image_bytes": 100_000_000,
        "sender_bps": 200_000_000,
        "node_bps": 1_000_000_000,
        "registry_bps": 1_000_000_000,
        "modes": {
            # 4 copies over 200 Mbit/s: the model says 16 s
            "direct": {
                "available": True,
                "seconds": 20.0,
                "transfer_seconds": 16.0,
                "sender_link_bytes": 4e8,
            },
            "relay": {"available": False},
        },
    }
    results = tmp_path / "fanout.json"
    results.write_text(json.dumps(measured))
    out = tmp_path / "cal.json"
    done = run("--calibrate", str(results), "--json", str(out))
    assert done.returncode == 0, done.stderr
    cal = json.loads(out.read_text())["calibration"]
    assert cal["direct"]["model_s"] == 16.0
    assert cal["direct"]["error"] == -0.2
    assert cal["direct"]["error_transfer"] == 0.0
    assert "relay" not in cal
    assert cal["direct"]["implied_link_efficiency"] == 1.0
    assert "relay     not measured" in done.stdout
    # links that carry half their rate in payload: the model takes twice as long
    done = run("--calibrate", str(results), "--link-efficiency", "0.5", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["calibration"]["direct"]["model_s"] == 32.0


def test_a_small_simulation_writes_every_mode(tmp_path: Path) -> None:
    out = tmp_path / "sim.json"
    done = run("--nodes", "50", "--size-gb", "1", "--fanouts", "2", "--json", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert set(doc["50"]) == {"direct", "relay f=2", "registry", "registry+p2p"}
    assert doc["50"]["relay f=2"]["sender_copies"] <= 1.1
    assert doc["kraken"]["published"]["p50"] == 10.0


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    cases = (
        ["--nodes", "0"],
        ["--calibrate", str(bad)],
        ["--kill", "3"],
        ["--link-efficiency", "2"],
        ["--layer-mb", "-5"],
    )
    for args in cases:
        done = run(*args)
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
