"""Check ``envctl doctor --local`` against a real GPU machine (run by hand where one is lent).

    PYTHONPATH=. python3 tests/gpu/check_doctor.py [--log tests/gpu/doctor-<gpu>-<date>.log]

Runs ``envctl doctor --local --json --refresh`` (state in a temporary directory), then asks
nvidia-smi itself and compares: every GPU's name, UUID, compute capability and memory, and the
driver, must be what doctor reports; the verdict must not be ``fail`` for a driver problem the
machine does not have (its CUDA works when torch runs a kernel). Prints one line per check, the
doctor table's JSON facts at the end, and exits non-zero on any mismatch. CI has no GPU; this is
the device check issue 12 asks for.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

lines: list[str] = []
failed = False


def check(name: str, ok: bool, detail: str) -> None:
    global failed
    failed |= not ok
    lines.append(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    print(lines[-1], flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path, help="also write the lines and the doctor document here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "ENVCTL_STATE_DIR": state}
        run = subprocess.run(
            [sys.executable, "-m", "envctl", "doctor", "--local", "--json", "--refresh"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    doc = json.loads(run.stdout)
    check(
        "doctor document",
        doc.get("schema") == "envctl.doctor/1",
        f"exit {run.returncode}, schema {doc.get('schema')}",
    )
    (entry,) = doc["nodes"].values()
    facts = entry["facts"]
    try:
        smi = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,uuid,compute_cap,memory.total,driver_version",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        check("nvidia-smi", False, f"{exc}: run this on a GPU machine")
        return 1
    rows = [[c.strip() for c in line.split(", ")] for line in smi.splitlines() if line.strip()]
    got = [(g["name"], g["uuid"], g["cc"], str(g["memory_mib"]), g["driver"]) for g in facts["gpus"]]
    check("gpus", got == [tuple(r) for r in rows], f"doctor {got} nvidia-smi {rows}")
    check("driver", facts["driver"] == rows[0][4], f"doctor {facts['driver']} nvidia-smi {rows[0][4]}")
    driver_codes = {
        "gpu-unusable",
        "driver-mismatch",
        "module-missing",
        "driver-too-old-for-gpu",
        "driver-past-gpu",
    }
    bad = [f for f in entry["findings"] if f["code"] in driver_codes]
    check("no driver findings on a working GPU", not bad, json.dumps(bad))
    for f in entry["findings"]:
        lines.append(f"finding {f['level']} {f['code']}: {f['message']} | fix: {f['fix']}")
        print(lines[-1])
    if args.log:
        args.log.write_text("\n".join(lines) + "\n" + json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
