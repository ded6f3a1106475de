"""Proof by locking: a sample of solver answers, per framework and generation, locked against the
real PyPI with uv through envctl's lock service. A solved stack that cannot be locked is a
solver bug (jax 0.5.3 planned on CUDA 12.4 was one: its plugin needs nvcc >= 12.6.85).

The lock's own check holds the resolved closure to the solution (one CUDA minor, its cuDNN and
NCCL, no CUDA wheel on a CPU-only platform); this test also compares the summary with the answer.
Answers on the PyTorch index (download.pytorch.org, unreachable here) cannot be locked: they are
held to the pins PyTorch published instead (tests/fixtures/published/torch_index.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from envctl.adapters.matrix_files import load_matrix
from envctl.adapters.profile_file import parse_profile
from envctl.core.lock import LockOptions
from envctl.core.solution import Solution
from envctl.core.stack import solve
from envctl.services.lock.lock import lock_solution

pytestmark = [pytest.mark.integration, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[3]
PUBLISHED = ROOT / "tests" / "fixtures" / "published" / "torch_index.json"
EXCLUDE_NEWER = "2026-11-30T00:00:00Z"  # every release the matrix lists is older


def ask(frameworks: dict[str, str], gpus: str | None = None, **targets: Any) -> dict[str, Any]:
    env: dict[str, Any] = {"name": "lock-sample"}
    if "python" in targets:
        env["python"] = targets.pop("python")
    if gpus:
        targets["gpus"] = gpus.split("+")
    return {"environment": env, "frameworks": frameworks, "targets": targets}


GH = {"arch": ["aarch64"]}

#: answers whose every build is on PyPI: these are locked
ON_PYPI: dict[str, dict[str, Any]] = {
    # torch, one per generation
    "torch-1.13-v100": ask({"torch": "==1.13.1"}, "V100"),
    "torch-2.0-a100-515": ask({"torch": "==2.0.1"}, "A100", driver="515.43.04"),
    "torch-2.1-a100": ask({"torch": "==2.1.2"}, "A100"),
    "torch-2.3-a100-530": ask({"torch": "==2.3.1"}, "A100", driver="530.30.02"),
    "torch-2.4-h100-535": ask({"torch": "==2.4.1"}, "H100", driver="535.104.05"),
    "torch-2.5-h100-550": ask({"torch": "==2.5.1"}, "H100", driver="550.54.15"),
    "torch-2.6-h100-550": ask({"torch": "==2.6.0"}, "H100", driver="550.54.15"),
    "torch-2.7-v100": ask({"torch": "==2.7.1"}, "V100"),
    "torch-2.8-h100-570": ask({"torch": "==2.8.0"}, "H100", driver="570.124.06"),
    "torch-2.9-b200": ask({"torch": "==2.9.1"}, "B200", driver="570.133.20"),
    "torch-2.10-v100": ask({"torch": "==2.10.0"}, "V100"),
    "torch-2.11-h100": ask({"torch": "==2.11.0"}, "H100"),
    "torch-2.12-h100-580": ask({"torch": "==2.12.1"}, "H100", driver="580.95.05"),
    "torch-2.14-t4": ask({"torch": "==2.14.1"}, "T4", driver="580.95.05"),
    "torch-2.15-h100": ask({"torch": "==2.15.0"}, "H100"),
    "torch-2.11-gh200": ask({"torch": "==2.11.0"}, "GH200", driver="580.95.05", **GH),
    "torch-2.10-cpu-aarch64": ask({"torch": "==2.10.0"}, **GH),
    # TensorFlow with its [and-cuda] wheels
    "tf-2.14-t4": ask({"tensorflow": "==2.14.1"}, "T4"),
    "tf-2.15-t4": ask({"tensorflow": "==2.15.1"}, "T4"),
    "tf-2.16-v100": ask({"tensorflow": "==2.16.2"}, "V100"),
    "tf-2.17-l4": ask({"tensorflow": "==2.17.1"}, "L4"),
    "tf-2.19-l4": ask({"tensorflow": "==2.19.1"}, "L4"),
    "tf-2.20-v100": ask({"tensorflow": "==2.20.0"}, "V100"),
    "tf-2.21-p100": ask({"tensorflow": "==2.21.0"}, "P100"),
    # JAX: the plugin's floors decide the CUDA minor
    "jax-0.4.26-a100": ask({"jax[cuda12]": "==0.4.26"}, "A100"),
    "jax-0.4.30-535": ask({"jax[cuda12]": "==0.4.30"}, "A100", driver="535.104.05"),
    "jax-0.4.35-535": ask({"jax[cuda12]": "==0.4.35"}, "A100", driver="535.104.05"),
    "jax-0.4.36-560": ask({"jax[cuda12]": "==0.4.36"}, "A100", driver="560.35.05"),
    "jax-0.5.3-550": ask({"jax[cuda12]": "==0.5.3"}, "A100", driver="550.54.15"),
    "jax-0.6.1-h100": ask({"jax[cuda12]": "==0.6.1"}, "H100"),
    "jax-0.6.2-p100": ask({"jax[cuda12]": "==0.6.2"}, "P100"),
    "jax-0.7.2-v100": ask({"jax[cuda12]": "==0.7.2"}, "V100"),
    "jax-0.7.2-cuda13": ask({"jax[cuda13]": "==0.7.2"}, "H100", driver="580.95.05"),
    "jax-0.9.2-cuda13": ask({"jax[cuda13]": "==0.9.2"}, "B200", driver="580.95.05"),
    "jax-0.11.0-py312": ask({"jax[cuda12]": "==0.11.0"}, "L4", python="==3.12.*"),
    "jax-gh200": ask({"jax[cuda12]": "==0.7.2"}, "GH200", **GH),
    # several frameworks on one CUDA, cuDNN and NCCL
    "torch-2.8+tf-2.20-l4": ask({"torch": "==2.8.0", "tensorflow": "==2.20.0"}, "L4", driver="570.124.06"),
    "torch-2.9+jax-0.7.2-h100": ask(
        {"torch": "==2.9.1", "jax[cuda12]": "==0.7.2"}, "H100", driver="570.124.06"
    ),
    "torch-2.11+jax-cuda13-h100": ask({"torch": "==2.11.0", "jax[cuda13]": "*"}, "H100"),
    "torch-2.4+jax-0.4.31-535": ask(
        {"torch": "==2.4.1", "jax[cuda12]": "==0.4.31"}, "H100", driver="535.104.05"
    ),
}

#: answers that take a build from the PyTorch index: held to the published pins
ON_INDEX: dict[str, dict[str, Any]] = {
    "torch-2.11-v100": ask({"torch": "==2.11.0"}, "V100", driver="570.124.06"),
    "torch-2.11-cu129": ask({"torch": "==2.11.0"}, "H100", driver="575.57.08"),
    "torch-2.7-h100": ask({"torch": "==2.7.1"}, "H100"),
    "torch-2.3-k80": ask({"torch": "==2.3.1"}, "K80", driver="470.239.06"),
    "torch-1.13-cu116": ask({"torch": "==1.13.1"}, "A100", driver="510.47.03"),
    "torch-2.9-gh200": ask({"torch": "==2.9.1"}, "GH200", **GH),
    "torch-2.5-cu121": ask({"torch": "==2.5.1"}, "H100", driver="550.54.14"),
    "torch-2.14-cpu-aarch64": ask({"torch": "==2.14.1"}, **GH),
    "torch-2.11+tf-2.20-v100": ask({"torch": "==2.11.0", "tensorflow": "==2.20.0"}, "V100"),
}


@pytest.fixture(scope="module")
def matrix():  # type: ignore[no-untyped-def]
    return load_matrix(ROOT / "compat_matrix")


def answer(matrix: Any, data: dict[str, Any]) -> Solution:
    return solve(parse_profile(json.loads(json.dumps(data)), "lock-sample.toml"), matrix)


def test_the_samples_cover_every_framework_and_their_index_split(matrix: Any) -> None:
    for name, data in ON_PYPI.items():
        s = answer(matrix, data)
        assert all(b.index.startswith("https://pypi.org") for f in s.frameworks for b in f.builds.values()), (
            name
        )
    for name, data in ON_INDEX.items():
        s = answer(matrix, data)
        assert any("+" in b.requirement for f in s.frameworks for b in f.builds.values()), name
    names = {f.name for data in ON_PYPI.values() for f in answer(matrix, data).frameworks}
    assert names == {"torch", "tensorflow", "jax"}


@pytest.mark.parametrize("name", sorted(ON_PYPI))
def test_a_solved_stack_locks_against_real_pypi(matrix: Any, name: str, tmp_path: Path) -> None:
    s = answer(matrix, ON_PYPI[name])
    result = lock_solution(
        s,
        LockOptions(output=tmp_path / "conda-lock.yml", exclude_newer=EXCLUDE_NEWER),
        profile_hash="lock-sample",
        matrix_hash=matrix.version,
    )
    assert result.status == "written"
    for summary in result.platforms:
        request = s.request_for(summary.platform)
        expect = request.expect
        if expect.cpu_only:
            assert summary.cuda is None and summary.cudnn is None, summary
        else:
            # bundled builds (none here) would carry no toolkit wheel; pip ones all of one minor
            assert summary.cuda == expect.cuda, (summary, expect)
            if expect.cudnn:
                assert summary.cudnn == expect.cudnn, (summary, expect)
            if expect.nccl:
                assert summary.nccl == expect.nccl, (summary, expect)
        for f in s.frameworks:
            if summary.platform in f.builds:
                assert f"{f.name} {f.version}" in summary.frameworks, (summary, f)


def _published(row_of: dict[str, Any], version: str, platform: str, variant: str) -> dict[str, Any]:
    key = {"linux-64": "linux-x86_64"}.get(platform, platform)
    return next(
        r
        for r in row_of["rows"]
        if version in r["torch"] and r["platform"] == key and r["variant"] == variant
    )


@pytest.mark.parametrize("name", sorted(ON_INDEX))
def test_an_index_answer_carries_the_published_pins(matrix: Any, name: str) -> None:
    published = json.loads(PUBLISHED.read_text())
    s = answer(matrix, ON_INDEX[name])
    torch = next(f for f in s.frameworks if f.name == "torch")
    for platform, build in torch.builds.items():
        if "+" not in build.requirement:
            continue
        row = _published(published, torch.version, platform, build.variant)
        assert row["exists"] is True, row
        expect = s.request_for(platform).expect
        if build.variant == "cpu":
            assert expect.cpu_only and expect.cuda is None
            continue
        assert Version(expect.cuda or "0") == Version(row["cuda"]), (expect, row)
        if isinstance(row["cudnn"], str):  # torch pins it exactly: the stack's cuDNN is that one
            assert expect.cudnn == row["cudnn"], (expect, row)
        if isinstance(row["nccl"], str) and row["nccl"] != "bundled":
            assert expect.nccl == row["nccl"], (expect, row)
        if row["sm"]:
            labels = {f"sm_{a.replace('.', '')}" for a in row["sm"]}
            assert labels <= set(build.archs), (build.archs, row["sm"])
