"""Check a lock made by `envctl lock` against the working GPU stack of a real machine.

    # where PyPI is reachable (the GPU machine has no network):
    envctl lock tests/fixtures/lock/torch-2.11.0-h200.toml -o .gl/lk/gpu-lock.yml \
        --exclude-newer 2026-11-26T00:00:00Z
    envctl export .gl/lk/gpu-lock.yml --format pylock -o .gl/lk/pylock.toml
    # on the GPU machine (run tool: carry [".gl/lk"]):
    PYTHONPATH=. python3 tests/gpu/check_lock_on_gpu.py .gl/lk/pylock.toml [--json OUT]

tests/fixtures/lock/torch-2.11.0-h200.pylock.toml is that export, made on 2026-11-26.

PYLOCK is `envctl export LOCK --format pylock` of a lock for this machine's framework, GPU and
driver (made where PyPI is reachable; the GPU machine has no network). On the machine:
1. every package the installed torch pins exactly (``==`` in its METADATA) has the locked version;
2. envctl's lock checks (CUDA minors, cuDNN/NCCL, wheel tags vs glibc/arch) pass on the
   *installed* closure with the Expectations the solver gives for this GPU and driver: a stack
   known to work must not be flagged;
3. torch runs a kernel, and its CUDA / cuDNN / NCCL versions are the locked ones.
Prints one line per check and exits non-zero on any mismatch.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from envctl.adapters.matrix_files import load_matrix
from envctl.adapters.profile_file import parse_profile
from envctl.core.lock import LockEntry
from envctl.core.lockcheck import check_platform
from envctl.core.stack import solve

results: list[dict[str, object]] = []


def check(name: str, ok: bool, detail: str) -> None:
    results.append({"check": name, "ok": ok, "detail": detail})
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


def info(name: str, detail: str) -> None:
    results.append({"check": name, "ok": None, "detail": detail})
    print(f"INFO {name}: {detail}", flush=True)


def load_pylock(path: Path) -> dict[str, str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    document = tomllib.loads(path.read_text())
    return {p["name"]: p["version"] for p in document["packages"]}


def installed_entry(name: str) -> LockEntry | None:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    wheel = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    tag = tags[0] if tags else "py3-none-any"
    py = ".".join(sorted({t.split("-")[0] for t in tags})) or "py3"
    abi = ".".join(sorted({t.split("-")[1] for t in tags})) or "none"
    plat = ".".join(sorted({t.split("-")[2] for t in tags})) or tag.split("-")[2]
    filename = f"{name.replace('-', '_')}-{dist.version}-{py}-{abi}-{plat}.whl"
    return LockEntry("pip", name, dist.version, "linux-64", f"file:///installed/{filename}")


def main() -> int:
    args = sys.argv[1:]
    out = Path(args[args.index("--json") + 1]) if "--json" in args else None
    locked = load_pylock(Path(args[0]))
    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()[0]  # fmt: skip
    gpu, driver = (part.strip() for part in smi.split(","))
    print(f"nvidia-smi: {gpu!r} driver {driver}; python {sys.version.split()[0]}", flush=True)

    torch_version = metadata.version("torch")
    check(
        "torch version",
        torch_version.split("+")[0] == locked["torch"],
        f"installed {torch_version}, locked {locked['torch']}",
    )
    pins = {}
    for req in metadata.requires("torch") or []:
        m = re.match(r"^([A-Za-z0-9._\-\[\],]+?)\s*==\s*([^;\s]+)\s*(;.*)?$", req)
        if m and "extra ==" not in (m.group(3) or ""):
            pins[re.sub(r"\[.*\]", "", m.group(1)).lower()] = m.group(2)
    for name, version in sorted(pins.items()):
        check(
            f"torch pins {name}",
            locked.get(name) == version,
            f"torch says =={version}, lock has {locked.get(name)}",
        )
    for name, version in sorted(locked.items()):
        entry = installed_entry(name)
        if entry is None:
            info(f"{name}", f"locked {version}, not installed here")
        elif entry.version != version and name not in pins:
            info(f"{name}", f"locked {version}, installed {entry.version} (not pinned by torch)")

    # envctl's checks must accept the installed, working closure for this GPU and driver
    python = ".".join(sys.version.split()[0].split(".")[:2])
    profile = parse_profile({
        "environment": {"name": "gpu-check", "python": f"=={python}.*"},
        "frameworks": {"torch": f"=={torch_version.split('+')[0]}"},
        "targets": {"arch": ["x86_64"], "gpus": [gpu], "driver": driver},
    }, "gpu-check")  # fmt: skip
    request = solve(profile, load_matrix()).request_for("linux-64")
    entries = [e for name in locked if (e := installed_entry(name)) is not None]
    problems = check_platform(entries, request, offline=True)
    check(
        "envctl lock checks on the installed stack",
        not problems,
        "; ".join(problems) or f"{len(entries)} packages, expect {request.expect}",
    )

    import torch

    x = torch.ones(256, 256, device="cuda")
    check("torch kernel runs", float((x @ x).sum()) == 256.0**3, torch.cuda.get_device_name(0))
    cuda = torch.version.cuda or ""
    check(
        "torch CUDA vs locked runtime",
        locked.get("nvidia-cuda-runtime", "").startswith(cuda + "."),
        f"torch {cuda}, lock nvidia-cuda-runtime {locked.get('nvidia-cuda-runtime')}",
    )
    cudnn = torch.backends.cudnn.version() or 0
    cudnn_str = f"{cudnn // 10000}.{cudnn // 100 % 100}.{cudnn % 100}"
    locked_cudnn = next((v for n, v in locked.items() if n.startswith("nvidia-cudnn-")), "")
    check(
        "torch cuDNN vs lock", locked_cudnn.startswith(cudnn_str), f"runtime {cudnn_str}, lock {locked_cudnn}"
    )
    nccl = ".".join(map(str, torch.cuda.nccl.version()))
    locked_nccl = next((v for n, v in locked.items() if n.startswith("nvidia-nccl-")), "")
    check("torch NCCL vs lock", locked_nccl == nccl, f"runtime {nccl}, lock {locked_nccl}")

    if out is not None:
        out.write_text(json.dumps({"gpu": gpu, "driver": driver, "results": results}, indent=2))
    return 0 if all(r["ok"] is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
