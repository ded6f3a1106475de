"""Lock speed: `envctl lock` against a bare `uv pip compile` of the same input, in the same run.

    .venv/bin/python bench/lock.py [--repeat 5] [--local]

Input: tests/fixtures/lock/torch-2.5.1-pypi.toml (torch 2.5.1, CUDA 12.4 build on linux-64,
CPU build on linux-aarch64), exclude-newer fixed. Default: real PyPI (network). ``--local``: the
test suite's stand-in wheels on a 127.0.0.1 index (no network; uv then takes a few ms, so envctl's
fixed costs dominate).

Baselines, run interleaved with envctl so both see the same machine load and the same warm uv
cache: bare uv per platform one after the other (what a script would do), and bare uv for both
platforms at once (envctl resolves platforms in parallel, so this is the strict baseline).
envctl runs as a fresh process (`python -m envctl lock`), paying interpreter start, imports and
the write through conda-lock. Targets: envctl within 1.3x of bare uv; no-op re-lock < 0.2 s.
Where PYTHONDONTWRITEBYTECODE is set (these machines), pass --compile so that a fresh process
loads bytecode like an installed envctl does instead of compiling ~200 modules from source.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from envctl.adapters.uv import find_uv  # noqa: E402
from envctl.core.lock import LockOptions  # noqa: E402
from envctl.services.lock.lock import lock_profile  # noqa: E402
from envctl.services.solve.solve import solve_profile_file  # noqa: E402

PROFILE = ROOT / "tests" / "fixtures" / "lock" / "torch-2.5.1-pypi.toml"
EXCLUDE_NEWER = "2025-06-01T00:00:00Z"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def local_index(work: Path) -> str:
    """Build the test suite's stand-in wheels and serve them; returns the index URL."""
    import http.server
    import threading

    sys.path.insert(0, str(ROOT / "tests" / "integration" / "lock"))
    from builders import build_wheel, write_simple_index  # type: ignore[import-not-found]

    sys.path.insert(0, str(ROOT / "tests"))
    from integration.lock.conftest import PYPI_WHEELS, UPLOAD_TIMES  # type: ignore[import-not-found]

    wheels = [build_wheel(spec, work / "built") for spec in PYPI_WHEELS]
    write_simple_index(wheels, work / "serve" / "pypi", upload_times=UPLOAD_TIMES)
    from integration.lock.conftest import _IndexHandler

    def handler(*a: object, **kw: object) -> http.server.BaseHTTPRequestHandler:
        return _IndexHandler(*a, directory=str(work / "serve"), **kw)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, name="lk-bench-index", daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/pypi/"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--local", action="store_true", help="stand-in wheels on 127.0.0.1")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="byte-compile envctl and site-packages first (as pip does on install)",
    )
    args = parser.parse_args()
    if args.compile:
        import sysconfig

        for tree in (ROOT / "envctl", Path(sysconfig.get_paths()["purelib"])):
            run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(tree)])
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not args.compile:
        print("note: PYTHONDONTWRITEBYTECODE is set: without --compile every process compiles")

    with tempfile.TemporaryDirectory(prefix="lk-bench-") as tmp:
        work = Path(tmp)
        index_args: list[str] = []
        if args.local:
            os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")
            index_args = ["--index-url", local_index(work)]
        solution = solve_profile_file(PROFILE).solution
        uv = find_uv()
        bare_cmds = []
        for request in solution.requests:
            req_in = work / f"{request.platform}.in"
            req_in.write_text("\n".join(request.requirements) + "\n")
            bare_cmds.append(
                [uv, "pip", "compile", str(req_in), "-q", "--no-python-downloads",
                 "--python", sys.executable, "--python-version", request.python_version,
                 "--python-platform", request.python_platform, "--generate-hashes",
                 "--exclude-newer", EXCLUDE_NEWER, *index_args,
                 "-o", str(work / f"{request.platform}.txt")]
            )  # fmt: skip
        lock = work / "conda-lock.yml"
        envctl = [sys.executable, "-m", "envctl", "lock", str(PROFILE), "-o", str(lock),
                  "--exclude-newer", EXCLUDE_NEWER, *index_args]  # fmt: skip

        def bare_sequential() -> None:
            for cmd in bare_cmds:
                run(cmd)

        def bare_parallel() -> None:
            procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for cmd in bare_cmds]
            if any(p.wait() for p in procs):
                raise SystemExit("bare uv failed")

        def envctl_fresh() -> None:
            lock.unlink(missing_ok=True)
            run(envctl)

        for fn in (bare_sequential, bare_parallel, envctl_fresh):  # warm uv's cache, the OS's
            fn()
        seq, par, env, noop_cli, noop_in, start = [], [], [], [], [], []
        options = LockOptions(
            output=lock, exclude_newer=EXCLUDE_NEWER, index_url=index_args[1] if index_args else None
        )
        for _ in range(args.repeat):
            seq.append(timed(bare_sequential))
            par.append(timed(bare_parallel))
            env.append(timed(envctl_fresh))
            noop_cli.append(timed(lambda: run(envctl)))  # the lock exists: reused
            noop_in.append(timed(lambda: lock_profile(PROFILE, options)))
            start.append(timed(lambda: run([sys.executable, "-m", "envctl", "--version"])))
        assert lock_profile(PROFILE, options).status == "reused"
        m = {k: statistics.median(v) for k, v in
             {"seq": seq, "par": par, "env": env, "noop_cli": noop_cli, "noop_in": noop_in,
              "start": start}.items()}  # fmt: skip
        where = "local stand-in index" if args.local else "PyPI"
        print(
            f"input: {PROFILE.name}, {len(bare_cmds)} platforms, {where}, {args.repeat} repetitions, medians"
        )
        print(f"bare uv pip compile, platforms one after another: {m['seq']:.3f} s")
        print(f"bare uv pip compile, platforms in parallel:       {m['par']:.3f} s")
        print(f"envctl lock (fresh process, writes the lock):     {m['env']:.3f} s")
        print(f"ratio envctl / bare sequential: {m['env'] / m['seq']:.2f}x (target <= 1.3x)")
        print(f"ratio envctl / bare parallel:   {m['env'] / m['par']:.2f}x")
        print(f"no-op re-lock, in-process (lock_profile): {m['noop_in']:.3f} s (target < 0.2 s)")
        print(
            f"no-op re-lock, fresh `envctl lock` process: {m['noop_cli']:.3f} s"
            f" (`envctl --version` process: {m['start']:.3f} s)"
        )


if __name__ == "__main__":
    main()
