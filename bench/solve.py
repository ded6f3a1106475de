"""Solver speed: in-process solve time per bundled profile, and `envctl solve` from a cold process.

    .venv/bin/python bench/solve.py [--repeat 200] [--cold 15] [--repeat-explain 5]

Machines here are noisy, so every number comes with a baseline measured in the same run:
in-process solves against the cost of loading the matrix (what a caller pays once), explanations
of unsatisfiable profiles against a feasible solve timed between them, and the cold CLI against
a bare `python -c pass` interpreter start. Targets: median solve < 5 ms; worst explanation
< 300 ms; `envctl solve` < 0.4 s wall.
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


#: unsatisfiable profiles, the hardest first: three frameworks with two or three conflicts,
#: two platforms, old drivers (explanations search many relaxed problems)
UNSAT = {
    "three-frameworks-five-conflicts": (
        {"torch": ">=2.4,<2.6", "tensorflow": "==2.15.1", "jax[cuda13]": "==0.4.26"},
        {"gpus": ["B200", "RTX 4090"], "driver": "470.57.02"},
    ),
    "three-frameworks-two-platforms": (
        {"jax[cuda13]": "==0.4.26", "torch": ">=2.11", "tensorflow": "~=2.18.0"},
        {"gpus": ["V100", "GH200"], "arch": ["x86_64", "aarch64"], "driver": "550.54.15"},
    ),
    "any-releases-mkl-two-platforms": (
        {"tensorflow": "*", "jax": "*", "torch": "==2.10.0"},
        {"gpus": ["RTX 4090"], "arch": ["x86_64", "aarch64"], "driver": "470.57.02"},
    ),
    "torch-tf-jax-exact": (
        {"torch": "==2.5.1", "tensorflow": "==2.15.1", "jax[cuda12]": "==0.4.26"},
        {"gpus": ["A100"]},
    ),
    "k80-h100-jax-driver-470": ({"jax[cuda12]": "*"}, {"gpus": ["K80", "H100"], "driver": "470.57.02"}),
    "torch-tf-two-conflicts": (
        {"torch": ">=2.11", "tensorflow": "==2.10.0"},
        {"gpus": ["H100"], "driver": "535.104.05"},
    ),
    "tf-ptx-jit-driver": ({"tensorflow": "~=2.18.0"}, {"gpus": ["H100"], "driver": "550.54.15"}),
    "kepler-new-torch": ({"torch": ">=2.10"}, {"gpus": ["K80"]}),
}


def explain_bench(matrix, repeat: int) -> None:  # type: ignore[no-untyped-def]
    """Explanations against a feasible solve of the bundled profile, interleaved in one run."""
    from envctl.adapters.profile_file import parse_profile
    from envctl.errors import UnsatisfiableError

    baseline_profile, _ = load_profile(ROOT / "profiles" / "torch-train-h100.toml")
    worst = 0.0
    base: list[float] = []
    for name, (frameworks, targets) in UNSAT.items():
        data = {
            "environment": {"name": "b", "python": ">=3.12"},
            "frameworks": frameworks,
            "targets": targets,
        }
        if name == "any-releases-mkl-two-platforms":
            data["blas"] = {"prefer": "mkl"}
        profile = parse_profile(data, f"{name}.toml")
        times, searches = [], 0
        for _ in range(repeat):
            base += timed(lambda: solve(baseline_profile, matrix), 1)
            start = time.perf_counter()
            try:
                solve(profile, matrix)
                raise SystemExit(f"{name}: expected no stack")
            except UnsatisfiableError as err:
                searches = getattr(err.explanation, "searches", 0)
            times.append(time.perf_counter() - start)
        med = statistics.median(times)
        worst = max(worst, med)
        print(f"explain {name:34s} median {med * 1e3:7.1f} ms  ({searches} searches)")
    b = statistics.median(base)
    print(
        f"explanations: worst median {worst * 1e3:.1f} ms (target < 300 ms) = {worst / b:.0f}x a feasible solve "
        f"({b * 1e3:.2f} ms, measured between them)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--cold", type=int, default=15)
    parser.add_argument("--repeat-explain", type=int, default=5)
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

    explain_bench(matrix, args.repeat_explain)

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
