"""Solver speed: in-process solve time per bundled profile, and `envctl solve` from a cold process.

    .venv/bin/python bench/solve.py [--repeat 200] [--cold 15]

Machines here are noisy, so every number comes with a baseline measured in the same run:
in-process solves against the cost of loading the matrix (what a caller pays once), and the
cold CLI against a bare `python -c pass` interpreter start. Targets: median solve < 5 ms;
`envctl solve` < 0.4 s wall.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from envctl.adapters.matrix_files import load_matrix  # noqa: E402
from envctl.adapters.profile_file import load_profile  # noqa: E402
from envctl.core.stack import solve  # noqa: E402
from envctl.errors import EnvctlError  # noqa: E402


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--cold", type=int, default=15)
    args = parser.parse_args()

    load_times = timed(load_matrix, 20)
    matrix = load_matrix()
    print(f"matrix load: median {statistics.median(load_times) * 1e3:.2f} ms (paid once per process)")
    medians = []
    for path in sorted((ROOT / "profiles").glob("*.toml")):
        profile, _ = load_profile(path)

        def once() -> None:
            with contextlib.suppress(EnvctlError):
                solve(profile, matrix)  # noqa: B023

        t = timed(once, args.repeat)
        med = statistics.median(t)
        medians.append(med)
        print(
            f"solve {path.stem:24s} median {med * 1e3:7.3f} ms  p95 {sorted(t)[int(len(t) * 0.95)] * 1e3:7.3f} ms"
        )
    overall = statistics.median(medians)
    print(
        f"in-process solve: median of medians {overall * 1e3:.3f} ms (target < 5 ms) = {overall / statistics.median(load_times):.2f}x a matrix load"
    )

    profile = str(ROOT / "profiles" / "torch-train-h100.toml")
    envctl = [sys.executable, "-m", "envctl", "solve", profile, "--json"]
    bare = [sys.executable, "-c", "pass"]
    cold, base = [], []
    for _ in range(args.cold):  # interleaved so both see the same machine load
        base += timed(lambda: subprocess.run(bare, check=True), 1)
        cold += timed(lambda: subprocess.run(envctl, check=True, stdout=subprocess.DEVNULL), 1)
    c, b = statistics.median(cold), statistics.median(base)
    print(
        f"cold `envctl solve --json`: median {c:.3f} s wall (target < 0.4 s); bare python start {b:.3f} s; ratio {c / b:.1f}x"
    )


if __name__ == "__main__":
    main()
