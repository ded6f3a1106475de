"""Check the matrix and the solver against a real GPU machine (run by hand where one is lent).

    PYTHONPATH=. python3 tests/gpu/check_on_gpu.py [--json OUT]

Reads what the machine really has (nvidia-smi: GPU name, driver, compute capability; the
installed torch and jax: CUDA, cuDNN, NCCL, compiled archs), then asks envctl's solver for that
GPU and driver, and compares: the GPU must resolve from its nvidia-smi name to the right CC, the
installed torch build must match its matrix row (CUDA, cuDNN pin, archs), and the solver must
accept the machine's own stack. Prints one line per check and exits non-zero on any mismatch.
CI has no GPU; this is the device check the issues ask for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from packaging.version import Version

from envctl.adapters.matrix_files import load_matrix
from envctl.adapters.profile_file import parse_profile
from envctl.core.constraints import resolve_gpu
from envctl.core.stack import solve
from envctl.errors import EnvctlError

results: list[dict[str, object]] = []


def check(name: str, ok: bool, detail: str) -> None:
    results.append({"check": name, "ok": ok, "detail": detail})
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


def main() -> int:
    matrix = load_matrix()
    smi = (
        subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[0]
    )
    gpu_name, driver, cc = (x.strip() for x in smi.split(","))
    print(f"nvidia-smi: {gpu_name!r} driver {driver} CC {cc}")
    try:
        gpu = resolve_gpu(gpu_name, matrix)
        check(
            "gpu name resolves",
            str(gpu.cc) == cc,
            f"{gpu_name!r} -> {gpu.name} CC {gpu.cc} (nvidia-smi says {cc})",
        )
    except EnvctlError as exc:
        check("gpu name resolves", False, exc.message)
        gpu = None

    try:
        import torch
    except ImportError:
        torch = None  # type: ignore[assignment]
    if torch is not None:
        public = torch.__version__.partition("+")[0]
        fw = matrix.framework("torch")
        assert fw is not None
        rows = [
            b
            for b in fw.builds
            if Version(public) in b.versions
            and "linux-64" in b.platforms
            and b.is_cuda
            and b.cuda is not None
            and Version(torch.version.cuda) in b.cuda
        ]
        check(
            "torch build in matrix",
            bool(rows),
            f"torch {torch.__version__} CUDA {torch.version.cuda}: rows {[b.label() for b in rows]}",
        )
        archs = sorted(a for a in torch.cuda.get_arch_list() if a.startswith("sm_"))
        for b in rows:
            want = sorted(f"sm_{a.major}{a.minor}" for a in b.archs)
            check(f"torch archs vs {b.label()}", archs == want, f"installed {archs}, matrix {want}")
            cudnn = torch.backends.cudnn.version()  # e.g. 91900 for 9.19.0
            if b.cudnn is not None and cudnn:
                major, minor, patch = cudnn // 10000, (cudnn // 100) % 100, cudnn % 100
                pins = [s.version for s in b.cudnn if s.operator == "=="]
                ok = all(p.split(".")[:3] == [str(major), str(minor), str(patch)] for p in pins)
                check(f"torch cuDNN vs {b.label()}", ok, f"runtime {major}.{minor}.{patch}, matrix {b.cudnn}")
            nccl = ".".join(str(x) for x in torch.cuda.nccl.version())
            if b.nccl is not None:
                check(
                    f"torch NCCL vs {b.label()}", Version(nccl) in b.nccl, f"runtime {nccl}, matrix {b.nccl}"
                )
        x = torch.ones(1024, device="cuda")
        check("torch kernel runs", float((x * 2).sum()) == 2048.0, torch.cuda.get_device_name())
        if gpu is not None:
            data = {
                "environment": {"name": "gpu-check"},
                "frameworks": {"torch": f"=={public}"},
                "targets": {"gpus": [gpu_name], "driver": driver},
            }
            try:
                s = solve(parse_profile(data, "gpu-check"), matrix)
                check(
                    "solver accepts this machine's torch",
                    True,
                    f"cuda {s.cuda} driver {s.min_driver} ({s.driver_mode}); {s.gpus[0].runs_via}",
                )
            except EnvctlError as exc:
                check("solver accepts this machine's torch", False, exc.message)

    try:
        import jax
    except ImportError:
        jax = None  # type: ignore[assignment]
    if jax is not None and gpu is not None:
        devices = [d.device_kind for d in jax.devices()]
        check("jax sees the gpu", any(d != "cpu" for d in devices), f"jax {jax.__version__}: {devices}")
        data = {
            "environment": {"name": "gpu-check"},
            "frameworks": {"jax[cuda13]": f"=={jax.__version__}"},
            "targets": {"gpus": [gpu_name], "driver": driver},
        }
        try:
            s = solve(parse_profile(data, "gpu-check"), matrix)
            check("solver accepts this machine's jax", True, f"cuda {s.cuda}, cudnn {s.cudnn}")
        except EnvctlError as exc:
            check("solver accepts this machine's jax", False, exc.message)

    if len(sys.argv) > 2 and sys.argv[1] == "--json":
        Path(sys.argv[2]).write_text(json.dumps({"nvidia_smi": smi, "results": results}, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
