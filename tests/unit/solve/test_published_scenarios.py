"""The solver's answers held against published facts: one row per question, each citing its source.

Every expectation below comes from a reference nobody on this project wrote; the key in each row's
``source`` is one of these (repository@commit : path, or URL):

- RELEASE-MD    pytorch/pytorch RELEASE.md #release-compatibility-matrix, #pytorch-cuda-support-matrix
- PR-175253     github.com/pytorch/pytorch/pull/175253 (2.11 matrix: 12.8 drops Volta; 13.0.2; PTX)
- ISSUE-157517  github.com/pytorch/pytorch/issues/157517 (sm_70 kept in the 2.8-2.10 cu128 builds)
- ISSUE-134790  github.com/pytorch/pytorch/issues/134790 (no aarch64 CUDA build of 2.4)
- BUILDER       pytorch/builder release/<X> : manywheel/build_cuda.sh, common/install_cuda.sh
                (1.13 d08f226, 2.0 9f0fad9, 2.4 4ce1afe)
- BUILDCUDA-2.8 pytorch/pytorch@00c7a380 : .ci/manywheel/build_cuda.sh (the 2.8 line)
- GBM-<era>     pytorch/pytorch .github/scripts/generate_binary_build_matrix.py (GBM-2.7ERA @00018c94;
                2.9 and pre-2.11 copies identified by content)
- TESTINFRA     pytorch/test-infra release/<X> : tools/scripts/generate_binary_build_matrix.py
                (2.7 b4870dd, 2.9 f3ee5ce, 2.11 2121ac6, 2.14 c840391)
- AARCH64-CI    pytorch/pytorch .ci/aarch64_linux/aarch64_ci_build.sh (v1: 12.8 -> 9.0;10.0;12.0;
                v2: 12.6 -> 8.0;9.0, 12.8 -> 8.0;9.0;10.0;12.0, 13.0 -> 8.0..12.0+PTX)
- MONOBASE      replicate/monobase@ad531960 : src/monobase/requirements/g000NN/*.txt (uv locks of the
                PyTorch-index wheels; `# via torch` lines are the wheel's own Requires-Dist)
- COG-TORCH     replicate/cog@6110c912 : pkg/config/torch_compatibility.json
- COG-ARCH      replicate/cog@6110c912 : pkg/doctor/gpu_compatibility.go (measured arch lists)
- PYPI          the wheels' METADATA on pypi.org (read with envctl's index reader)
- JAX-<tag>     jax-ml/jax at tag <tag> : setup.py, jax_plugins/cuda/plugin_setup.py,
                build/nvidia-requirements.txt
- JAX-INSTALL   jax-ml/jax docs/installation.md (CUDA 13: SM >= 7.5, driver >= 580)
- TF-TESTED     tensorflow/docs@7c365021 : site/en/install/source.md (tested GPU configurations)
- CUDA-RN       docs.nvidia.com/cuda/cuda-toolkit-release-notes (table 2: minor-version
                compatibility floors; table 3: driver per toolkit update; 2.6.2: dropped archs)
- CUDNN-SM      docs.nvidia.com/deeplearning/cudnn support matrices (8.5.0: SM 3.5 and later;
                8.9.x, 9.0.0, 9.5.x: 5.0-9.0; 9.10.2: 5.0-12.0; 9.17.0: 7.5-12.0) and the 9.11.0
                release notes (compute capability < 7.5 dropped)
- KEPLER-470    packages.debian.org nvidia-driver: "The (Tesla) 470 drivers are the last driver series
                supporting GPUs based on the Kepler architecture"
- R580-LAST     NVIDIA Unix graphics feature deprecation schedule: R580 is the last branch for
                Maxwell, Pascal and Volta
- GPU-OPERATOR  NVIDIA/cloud-native-docs@52dcb7b8 : gpu-operator/platform-support.rst (HGX B200 needs
                570.133.20 [a1cb216d]; RTX PRO 6000 Blackwell Server Edition 575.57.08 [638a2ea6])
- R570-5090     Phoronix: the first public R570 Linux driver (CUDA 12.8 GA runfile 570.86.10) runs the
                GeForce RTX 5090; NVIDIA's Blackwell GPUs need R570
- GLFS-R590     glfs-book nvidia-rev: R590 supports Turing and newer only

Each row asks the solver one question. A "yes" row checks the facts of the answer; a "no" row
checks that no stack exists and that relaxing the named requirements (all together) gives one,
which says what the conflict is about without depending on how the explanation is worded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from packaging.version import Version

from envctl.adapters.profile_file import parse_profile
from envctl.core.constraints import make_problem
from envctl.core.matrix import Matrix
from envctl.core.solution import Solution
from envctl.core.solver import Found, search
from envctl.core.stack import solve

from ..core.helpers import profile


@dataclass(frozen=True)
class Row:
    id: str
    frameworks: dict[str, str]
    targets: dict[str, Any]
    source: str
    facts: dict[str, Any] = field(default_factory=dict)  # empty: a "no" row
    fixed_by: tuple[str, ...] | None = None  # set for "no" rows


def yes(id: str, frameworks: dict[str, str], source: str, targets: dict[str, Any], **facts: Any) -> Row:
    return Row(id, frameworks, targets, source, facts)


def no(
    id: str, frameworks: dict[str, str], source: str, targets: dict[str, Any], fixed_by: tuple[str, ...]
) -> Row:
    return Row(id, frameworks, targets, source, fixed_by=fixed_by)


def t(gpus: str | None = None, **kw: Any) -> dict[str, Any]:
    """Targets: one GPU name (or none), driver, arch, python, ..."""
    if gpus is not None:
        kw["gpus"] = [g.strip() for g in gpus.split("+")]
    return kw


GH = {"arch": ["aarch64"]}
V = "frameworks.torch"
DRV = "targets.driver"
PY = "environment.python"
AARCH64_GPU = "targets.gpu_arch.linux-aarch64"

# fmt: off
ROWS: list[Row] = [
    # ---- torch: which build reaches which GPU ------------------------------------------------
    yes("t-211-v100", {"torch": "==2.11.0"}, "RELEASE-MD 2.11; PR-175253; CUDNN-SM 9.17.0",
        t("V100", driver="570.124.06"), torch="torch==2.11.0+cu126", cudnn="9.10.2.21", nccl="2.28.9"),
    yes("t-211-p100", {"torch": "==2.11.0"}, "RELEASE-MD 2.11 (12.6: 5.0-9.0)", t("P100"),
        torch="torch==2.11.0+cu126"),
    yes("t-211-m60", {"torch": "==2.11.0"}, "RELEASE-MD 2.11 (12.6: 5.0-9.0)", t("M60"),
        torch="torch==2.11.0+cu126"),
    yes("t-211-v100-drv580", {"torch": "==2.11.0"}, "CUDA-RN 2.6.2 (13.0 drops Volta); RELEASE-MD 2.11",
        t("V100", driver="580.95.05"), torch="torch==2.11.0+cu126"),
    yes("t-211-t4", {"torch": "==2.11.0"}, "PYPI torch-2.11.0 (sm_75..sm_120)", t("T4"),
        torch="torch==2.11.0", cuda="13.0"),
    yes("t-211-h100-u2", {"torch": "==2.11.0"},
        "PYPI torch-2.11.0 cuda-toolkit==13.0.2; CUDA-RN table 3 (13.0 U2)", t("H100", driver="580.95.05"),
        torch="torch==2.11.0", mode="native", min_driver="580.95.05", cudnn="9.19.0.56"),
    yes("t-211-h100-ga", {"torch": "==2.11.0"}, "PYPI torch-2.11.0 cuda-toolkit==13.0.2; CUDA-RN tables 2-3",
        t("H100", driver="580.65.06"), torch="torch==2.11.0", mode="minor-version compatibility"),
    yes("t-211-cu129", {"torch": "==2.11.0"}, "COG-TORCH (2.11.0+cu129); GBM-2.11PRE; CUDA-RN 12.9 U1",
        t("H100", driver="575.57.08"), torch="torch==2.11.0+cu129", mode="native"),
    yes("t-211-cu128", {"torch": "==2.11.0"}, "RELEASE-MD 2.11 (cuDNN 9.17.1.4); GBM-2.11PRE (12.8.90)",
        t("H100", driver="570.124.06"), torch="torch==2.11.0+cu128", cudnn="9.17.1.4", mode="native"),
    yes("t-211-below-13", {"torch": "==2.11.0"}, "CUDA-RN table 2 (13.x needs >= 580.65.06); COG-TORCH cu129",
        t("H100", driver="580.65.05"), cuda="12.9", mode="native"),
    yes("t-210-v100", {"torch": "==2.10.0"}, "PR-175253 (2.10 cu128 keeps Volta); PYPI torch-2.10.0",
        t("V100"), torch="torch==2.10.0", cuda="12.8"),
    yes("t-210-p100", {"torch": "==2.10.0"}, "RELEASE-MD 2.10", t("P100"), torch="torch==2.10.0+cu126"),
    yes("t-210-h100", {"torch": "==2.10.0"}, "RELEASE-MD 2.10 (cu130: cuDNN 9.15.1.9, NCCL 2.28.9)",
        t("H100"), torch="torch==2.10.0+cu130", cudnn="9.15.1.9", nccl="2.28.9"),
    yes("t-291-v100", {"torch": "==2.9.1"}, "ISSUE-157517; PYPI torch-2.9.1", t("V100"),
        torch="torch==2.9.1"),
    yes("t-291-h100", {"torch": "==2.9.1"}, "GBM-2.9ERA (13.0.0, NCCL 2.27.7 for cu13)", t("H100"),
        torch="torch==2.9.1+cu130", nccl="2.27.7"),
    yes("t-291-h100-570", {"torch": "==2.9.1"}, "PYPI torch-2.9.1 (12.8.90); CUDA-RN 12.8 U1",
        t("H100", driver="570.124.06"), torch="torch==2.9.1", mode="native", nccl="2.27.5"),
    yes("t-280-p100", {"torch": "==2.8.0"}, "BUILDCUDA-2.8 (12.8: 7.0-12.0; 12.6: 5.0-9.0)", t("P100"),
        torch="torch==2.8.0+cu126", nccl="2.27.3"),
    yes("t-280-v100", {"torch": "==2.8.0"}, "BUILDCUDA-2.8 (12.9: 7.0;...;12.0+PTX)", t("V100"),
        torch="torch==2.8.0+cu129"),
    yes("t-280-b300", {"torch": "==2.8.0"},
        "BUILDCUDA-2.8 (sm_100); CUDA-RN binary compatibility (same major)", t("B300"), runs="sm_100"),
    yes("t-271-v100", {"torch": "==2.7.1"}, "COG-ARCH (2.7.0+cu128: sm_75..sm_120); ISSUE-157517", t("V100"),
        torch="torch==2.7.1", cuda="12.6"),
    yes("t-271-p100", {"torch": "==2.7.1"}, "PYPI torch-2.7.1 (cu126, sm_50..sm_90)", t("P100"),
        torch="torch==2.7.1"),
    yes("t-271-h100", {"torch": "==2.7.1"}, "MONOBASE torch2.7.1-cu128 (cuDNN 9.7.1.26, NCCL 2.26.2)",
        t("H100"), torch="torch==2.7.1+cu128", cudnn="9.7.1.26", nccl="2.26.2"),
    yes("t-271-b200", {"torch": "==2.7.1"}, "COG-ARCH gpuFloors (CC 10.0 from 2.7.0 cu128)", t("B200"),
        torch="torch==2.7.1+cu128"),
    yes("t-270-5090", {"torch": "==2.7.0"}, "COG-ARCH (2.7.0+cu128 sm_120 + compute_120); MONOBASE 12.8.57",
        t("RTX 5090", driver="570.124.06"), torch="torch==2.7.0+cu128", runs="sm_120", mode="native",
        archs="compute_120"),
    no("t-260-5090", {"torch": "==2.6.0"}, "COG-ARCH (2.6.0+cu126 sm_50..sm_90, no PTX)", t("RTX 5090"),
        (V,)),
    no("t-260-b200", {"torch": "==2.6.0"}, "COG-ARCH gpuFloors", t("B200"), (V,)),
    no("t-241-b200", {"torch": "==2.4.1"}, "COG-ARCH (2.4.1+cu124 sm_50..sm_90)", t("B200"), (V,)),
    yes("t-260-h100", {"torch": "==2.6.0"}, "RELEASE-MD 2.6 (cu126); MONOBASE torch2.6.0-cu126", t("H100"),
        torch="torch==2.6.0+cu126", cudnn="9.5.1.17", nccl="2.21.5"),
    yes("t-251-h100", {"torch": "==2.5.1"}, "PYPI torch-2.5.1 (12.4.127, cuDNN 9.1.0.70, NCCL 2.21.5)",
        t("H100", driver="560.35.03"), torch="torch==2.5.1", cuda="12.4", cudnn="9.1.0.70", nccl="2.21.5"),
    yes("t-251-l40s", {"torch": "==2.5.1"}, "PYPI torch-2.5.1 (sm_86 runs on CC 8.9)", t("L40S"),
        runs="sm_86"),
    yes("t-241-h100", {"torch": "==2.4.1"}, "MONOBASE torch2.4.1-cu124 (NCCL 2.20.5)", t("H100"),
        torch="torch==2.4.1+cu124", cudnn="9.1.0.70", nccl="2.20.5"),
    yes("t-222-a100", {"torch": "==2.2.2"}, "PYPI torch-2.2.2 (cu121, NCCL 2.19.3)", t("A100"),
        torch="torch==2.2.2", nccl="2.19.3"),
    yes("t-212-a100", {"torch": "==2.1.2"}, "PYPI torch-2.1.2 (cu121, NCCL 2.18.1)", t("A100"),
        torch="torch==2.1.2", nccl="2.18.1"),
    yes("t-201-h100", {"torch": "==2.0.1"}, "COG-ARCH (2.0.1+cu118 sm_37..sm_90); BUILDER release/2.0",
        t("H100"), torch="torch==2.0.1+cu118"),
    yes("t-201-a100-117", {"torch": "==2.0.1"},
        "PYPI torch-2.0.1 (cu117); CUDA-RN table 3 (11.7 GA 515.43.04)", t("A100", driver="515.43.04"),
        torch="torch==2.0.1", cuda="11.7", mode="native"),
    no("t-1131-h100", {"torch": "==1.13.1"}, "BUILDER release/1.13 build_cuda.sh (3.7..8.6); COG-ARCH",
        t("H100"), (V,)),
    yes("t-1131-cu116", {"torch": "==1.13.1"}, "COG-TORCH (1.13.1+cu116); BUILDER release/1.13 install_116",
        t("A100", driver="510.47.03"), torch="torch==1.13.1+cu116", mode="native"),
    yes("t-1131-470", {"torch": "==1.13.1"}, "CUDA-RN table 2 (11.x >= 450.80.02)",
        t("A100", driver="470.57.02"), cuda="11.7", mode="minor-version compatibility"),
    yes("t-212-t4", {"torch": "==2.1.2"}, "PYPI torch-2.1.2", t("T4"), torch="torch==2.1.2", runs="sm_75"),
    yes("t-2121-v100", {"torch": "==2.12.1"}, "RELEASE-MD 2.12-2.14 (cu126 5.0-9.0; cu13x from 7.5)",
        t("V100"), torch="torch==2.12.1+cu126"),
    yes("t-2141-p100", {"torch": "==2.14.1"}, "RELEASE-MD 2.12-2.14", t("P100"), torch="torch==2.14.1+cu126"),
    yes("t-2130-t4", {"torch": "==2.13.0"}, "PYPI torch-2.13.0 (cu130)", t("T4", driver="580.95.05"),
        torch="torch==2.13.0"),
    # ---- torch on Kepler: cuDNN 8.x still has Kepler kernels, cuDNN 9 does not ----------------
    yes("t-231-k80", {"torch": "==2.3.1"},
        "COG-ARCH (cu118 sm_37); CUDNN-SM 8.5.0 (SM 3.5 and later); KEPLER-470",
        t("K80", driver="470.239.06"), torch="torch==2.3.1+cu118", mode="minor-version compatibility",
        runs="sm_37"),
    no("t-251-k80", {"torch": "==2.5.1"}, "CUDNN-SM 9.0.0 (CC 5.0-9.0): cuDNN 9.1 has no Kepler kernels",
        t("K80"), (V,)),
    no("t-241-k80", {"torch": "==2.4.1"},
        "CUDNN-SM 9.0.0 (CC 5.0-9.0); MONOBASE torch2.4.1-cu118 (cuDNN 9.1.0.70)", t("K80"), (V,)),
    yes("t-1131-k80", {"torch": "==1.13.1"}, "PYPI torch-1.13.1 (sm_37, cuDNN 8.5.0.96); CUDNN-SM 8.5.0",
        t("K80"), torch="torch==1.13.1"),
    no("t-280-k80", {"torch": "==2.8.0"}, "CUDA-RN 2.6.2 (Kepler removed in 12.0)", t("K80"), (V,)),
    # ---- CUDA update releases: native floor of what the wheels carry -----------------------------
    yes("u-240-124ga", {"torch": "==2.4.0"}, "MONOBASE torch2.4.0-cu124 (cudart 12.4.99 = 12.4 GA); CUDA-RN",
        t("H100", driver="550.54.14"), torch="torch==2.4.0+cu124", mode="native", min_driver="550.54.14"),
    yes("u-251-124u1-below", {"torch": "==2.5.1"}, "PYPI torch-2.5.1 (cudart 12.4.127 = 12.4 U1, 550.54.15)",
        t("H100", driver="550.54.14"), torch="torch==2.5.1+cu121", mode="native"),
    yes("u-251-124u1-at", {"torch": "==2.5.1"}, "PYPI torch-2.5.1 (12.4.127); CUDA-RN table 3 (12.4 U1)",
        t("H100", driver="550.54.15"), torch="torch==2.5.1", mode="native", min_driver="550.54.15"),
    yes("u-280-128u1-at", {"torch": "==2.8.0"},
        "PYPI torch-2.8.0 (cudart 12.8.90 = 12.8 U1); CUDA-RN table 3", t("H100", driver="570.124.06"),
        torch="torch==2.8.0", mode="native", min_driver="570.124.06"),
    yes("u-280-128u1-below", {"torch": "==2.8.0"}, "PYPI torch-2.8.0 (12.8.90 needs 570.124.06 natively)",
        t("H100", driver="570.86.15"), torch="torch==2.8.0+cu126", mode="native"),
    yes("u-280-129u1-at", {"torch": "==2.8.0"}, "BUILDCUDA-2.8 (12.9.1); CUDA-RN table 3 (12.9 U1 575.57.08)",
        t("H100", driver="575.57.08"), torch="torch==2.8.0+cu129", mode="native"),
    yes("u-280-129ga", {"torch": "==2.8.0"}, "BUILDCUDA-2.8 (12.9.1, not 12.9 GA); CUDA-RN table 3",
        t("H100", driver="575.51.03"), torch="torch==2.8.0", mode="native"),
    yes("u-271-128ga", {"torch": "==2.7.1"}, "MONOBASE torch2.7.1-cu128 (cudart 12.8.57 = 12.8 GA, 570.26)",
        t("H100", driver="570.26"), torch="torch==2.7.1+cu128", mode="native", min_driver="570.26"),
    yes("u-2121-132u1", {"torch": "==2.12.1"},
        "RELEASE-MD 2.12 (13.2.1); CUDA-RN table 3 (13.2 U1 595.58.03)", t("H100", driver="595.58.03"),
        torch="torch==2.12.1+cu132", mode="native"),
    yes("u-2121-132ga", {"torch": "==2.12.1"}, "RELEASE-MD 2.12 (13.2.1 needs 595.58.03); PYPI (13.0.2)",
        t("H100", driver="595.45.04"), torch="torch==2.12.1", mode="native"),
    yes("u-2150-132u2-below", {"torch": "==2.15.0"},
        "PYPI torch-2.15.0 (cuda-toolkit==13.2.2); CUDA-RN (595.71.05)", t("H100", driver="595.58.03"),
        torch="torch==2.15.0", mode="minor-version compatibility"),
    yes("u-2150-132u2-at", {"torch": "==2.15.0"},
        "PYPI torch-2.15.0 (cuda-toolkit==13.2.2); CUDA-RN (595.71.05)", t("H100", driver="595.71.05"),
        torch="torch==2.15.0", mode="native", min_driver="595.71.05"),
    yes("u-tf215-at", {"tensorflow": "==2.15.1"},
        "PYPI tensorflow-2.15.1 (cudart 12.2.140, 12.2 U2); CUDA-RN", t("T4", driver="535.104.05"),
        mode="native", min_driver="535.104.05"),
    yes("u-tf215-below", {"tensorflow": "==2.15.1"}, "PYPI tensorflow-2.15.1 (12.2 U2); CUDA-RN tables 2-3",
        t("T4", driver="535.54.03"), mode="minor-version compatibility"),
    yes("u-tf218-at", {"tensorflow": "==2.18.1"},
        "PYPI tensorflow-2.18.1 (cudart 12.5.82 = 12.5 U1); CUDA-RN", t("L4", driver="555.42.06"),
        mode="native", min_driver="555.42.06"),
    yes("u-tf218-below", {"tensorflow": "==2.18.1"}, "PYPI tensorflow-2.18.1 (12.5 U1 555.42.06); CUDA-RN",
        t("L4", driver="555.42.02"), mode="minor-version compatibility"),
    # ---- the CUDA-RN floors, both sides ----------------------------------------------------------
    yes("d-118-at", {"torch": "==2.3.1"}, "CUDA-RN table 3 (11.8 520.61.05); MONOBASE torch2.3.1-cu118",
        t("A100", driver="520.61.05"), torch="torch==2.3.1+cu118", mode="native"),
    yes("d-118-below", {"torch": "==2.3.1"}, "CUDA-RN tables 2-3 (11.x from 450.80.02)",
        t("A100", driver="520.61.04"), torch="torch==2.3.1+cu118", mode="minor-version compatibility"),
    yes("d-121-at", {"torch": "==2.3.1"}, "CUDA-RN table 3 (12.1 530.30.02); PYPI torch-2.3.1 (12.1.105)",
        t("A100", driver="530.30.02"), torch="torch==2.3.1", mode="native"),
    yes("d-121-below", {"torch": "==2.3.1"}, "CUDA-RN table 2 (12.x from 525.60.13)",
        t("A100", driver="530.30.01"), torch="torch==2.3.1", mode="minor-version compatibility"),
    yes("d-12x-below", {"torch": "==2.5.1"}, "CUDA-RN table 2 (12.x needs >= 525.60.13)",
        t("H100", driver="525.60.12"), torch="torch==2.5.1+cu118", cuda="11.8"),
    yes("d-12x-at", {"torch": "==2.5.1"}, "CUDA-RN table 2", t("H100", driver="525.60.13"),
        torch="torch==2.5.1", mode="minor-version compatibility"),
    no("d-old-driver", {"torch": "==2.11.0"}, "CUDA-RN table 2 (11.x floor 450.80.02; no 11.x build of 2.11)",
        t("H100", driver="440.33.01"), (DRV,)),
    no("d-jax13-570", {"jax[cuda13]": "*"}, "JAX-INSTALL (CUDA 13 needs >= 580)",
        t("H100", driver="570.124.06"), (DRV,)),
    # ---- per-GPU driver bounds -----------------------------------------------------------------
    no("g-k80-535", {"torch": "==2.3.1"}, "KEPLER-470", t("K80", driver="535.104.05"), (DRV,)),
    no("g-k40-510", {"tensorflow": "==2.10.1"}, "KEPLER-470; PYPI tensorflow-2.10.1 (sm_35)",
        t("K40", driver="510.47.03"), (DRV,)),
    yes("g-k40-470", {"tensorflow": "==2.10.1"},
        "KEPLER-470; PYPI tensorflow-2.10.1 (sm_35); CUDA-RN table 2", t("K40", driver="470.239.06"),
        runs="sm_35", mode="native"),
    yes("g-k80-470", {"torch": "==2.3.1"}, "KEPLER-470; CUDA-RN table 2", t("K80", driver="470.82.01"),
        torch="torch==2.3.1+cu118"),
    no("g-p100-590", {"torch": "==2.11.0"}, "R580-LAST", t("P100", driver="590.44.01"), (DRV,)),
    no("g-m60-595", {"torch": "==2.11.0"}, "R580-LAST", t("M60", driver="595.45.04"), (DRV,)),
    no("g-v100-590", {"torch": "==2.11.0"}, "R580-LAST", t("V100", driver="590.48.01"), (DRV,)),
    yes("g-t4-590", {"torch": "==2.11.0"}, "GLFS-R590 (Turing and newer)", t("T4", driver="590.44.01"),
        torch="torch==2.11.0"),
    no("g-b200-535", {"torch": "==2.8.0"}, "GPU-OPERATOR (HGX B200 >= 570.133.20)",
        t("B200", driver="535.104.05"), (DRV,)),
    no("g-b200-570124", {"torch": "==2.8.0"}, "GPU-OPERATOR (HGX B200 >= 570.133.20)",
        t("B200", driver="570.124.06"), (DRV,)),
    yes("g-b200-570133", {"torch": "==2.8.0"}, "GPU-OPERATOR (HGX B200 >= 570.133.20); PYPI torch-2.8.0",
        t("B200", driver="570.133.20"), torch="torch==2.8.0", mode="native", min_driver="570.133.20"),
    no("g-b200-fc", {"jax[cuda13]": "*"},
        "GPU-OPERATOR (a driver too old for the GPU; cuda-compat cannot help)",
        t("B200", driver="550.54.15", forward_compat=True), (DRV,)),
    no("g-5090-550", {"torch": "*"}, "R570-5090", t("RTX 5090", driver="550.54.15"), (DRV,)),
    no("g-pro6000-570", {"torch": "==2.8.0"}, "GPU-OPERATOR (RTX PRO 6000 Blackwell Server >= 575.57.08)",
        t("RTX PRO 6000 Blackwell Server", driver="570.133.20"), (DRV,)),
    yes("g-pro6000-575", {"torch": "==2.8.0"}, "GPU-OPERATOR (RTX PRO 6000 Blackwell Server >= 575.57.08)",
        t("RTX PRO 6000 Blackwell Server", driver="575.57.08"), runs="sm_120"),
    # ---- aarch64 -------------------------------------------------------------------------------
    yes("a-271-gh200", {"torch": "==2.7.1"},
        "GBM-2.7ERA (12.8-aarch64); TESTINFRA release/2.7; AARCH64-CI v1", t("GH200", **GH),
        aarch64="torch==2.7.1+cu128"),
    yes("a-291-gh200", {"torch": "==2.9.1"}, "GBM-2.9ERA; TESTINFRA release/2.9; AARCH64-CI v2",
        t("GH200", **GH), aarch64="torch==2.9.1+cu130"),
    yes("a-291-gh200-570", {"torch": "==2.9.1"}, "GBM-2.9ERA (12.8-aarch64); AARCH64-CI v2",
        t("GH200", driver="570.124.06", **GH), aarch64="torch==2.9.1+cu128"),
    yes("a-291-gh200-560", {"torch": "==2.9.1"}, "GBM-2.9ERA (12.6-aarch64: 8.0;9.0)",
        t("GH200", driver="560.35.05", **GH), aarch64="torch==2.9.1+cu126"),
    yes("a-2100-gh200", {"torch": "==2.10.0"}, "TESTINFRA release/2.10 (12.6/12.8/13.0-aarch64)",
        t("GH200", **GH), aarch64="torch==2.10.0+cu130"),
    yes("a-2110-gh200-575", {"torch": "==2.11.0"}, "TESTINFRA release/2.11 (12.6/12.8/13.0-aarch64)",
        t("GH200", driver="575.57.08", **GH), aarch64="torch==2.11.0+cu128"),
    yes("a-2121-gh200", {"torch": "==2.12.1"}, "RELEASE-MD 2.12 aarch64 (cu126/cu130/cu132)",
        t("GH200", **GH), aarch64="torch==2.12.1+cu132"),
    yes("a-2121-gh200-580", {"torch": "==2.12.1"}, "PYPI torch-2.12.1 aarch64 (cu130)",
        t("GH200", driver="580.95.05", **GH), aarch64="torch==2.12.1"),
    no("a-241-gh200", {"torch": "==2.4.1"}, "ISSUE-134790 (no aarch64 CUDA build of 2.4)", t("GH200", **GH),
        (AARCH64_GPU,)),
    yes("a-2110-cpu", {"torch": "==2.11.0"},
        "GBM-2.11PRE (cpu-aarch64 -> whl/cpu); PYPI (aarch64 2.11 is CUDA)", t(**GH),
        aarch64="torch==2.11.0+cpu"),
    yes("a-2100-cpu", {"torch": "==2.10.0"}, "PYPI torch-2.10.0 aarch64 (CPU-only)", t(**GH),
        aarch64="torch==2.10.0"),
    yes("a-newest-cpu", {"torch": "*"}, "TESTINFRA release/2.14 (cpu-aarch64 -> whl/cpu)", t(**GH),
        aarch64="torch==2.14.1+cpu"),
    yes("a-2141-thor", {"torch": "==2.14.1"}, "RELEASE-MD aarch64 table (sm_110); PYPI torch-2.14.1 aarch64",
        t("Jetson Thor", **GH), runs="sm_110"),
    yes("a-2110-gb10", {"torch": "==2.11.0"}, "PYPI torch-2.11.0 aarch64 (sm_120 runs on 12.1)",
        t("GB10", **GH), aarch64="torch==2.11.0", runs="sm_120"),
    yes("a-2100-mixed", {"torch": "==2.10.0"}, "TESTINFRA release/2.10; PYPI torch-2.10.0",
        t("H100 + GH200", arch=["x86_64", "aarch64"]), torch="torch==2.10.0+cu130",
        aarch64="torch==2.10.0+cu130"),
    yes("a-271-mixed", {"torch": "==2.7.1"}, "GBM-2.7ERA (12.8-aarch64 only)",
        t("H100 + GH200", arch=["x86_64", "aarch64"]), cuda="12.8", aarch64="torch==2.7.1+cu128"),
    yes("a-cpu-beside-gpu", {"torch": "<=2.10"}, "PYPI torch-2.10.0 aarch64 (CPU-only)",
        t("H100", arch=["x86_64", "aarch64"], gpu_arch=["x86_64"]), aarch64="torch==2.10.0"),
    no("a-tf-gh200", {"tensorflow": "*"}, "TF-TESTED (Linux GPU builds are x86_64)", t("GH200", **GH),
        (AARCH64_GPU,)),
    yes("a-jax-gh200", {"jax[cuda12]": "*"}, "PYPI jax-cuda12-plugin aarch64 wheels", t("GH200", **GH),
        cuda_major=12),
    no("a-jax0438-gh200", {"jax[cuda12]": "==0.4.38"}, "PYPI jax-cuda12-plugin 0.4.38 (no aarch64 wheel)",
        t("GH200", **GH), ("frameworks.jax[cuda12]",)),
    # ---- JAX -----------------------------------------------------------------------------------
    yes("j-053-550", {"jax[cuda12]": "==0.5.3"},
        "JAX-jax-v0.5.3 plugin_setup.py (nvidia-cuda-nvcc-cu12>=12.6.85)", t("A100", driver="550.54.15"),
        cuda_min="12.6", mode="minor-version compatibility"),
    yes("j-0435-535", {"jax[cuda12]": "==0.4.35"}, "JAX-jax-v0.4.35 plugin_setup.py (nvcc>=12.1.105)",
        t("A100", driver="535.104.05"), cuda="12.2", mode="native"),
    yes("j-0436-560", {"jax[cuda12]": "==0.4.36"}, "JAX-jax-v0.4.36 plugin_setup.py (nvcc>=12.6.85)",
        t("A100", driver="560.35.05"), cuda="12.6", mode="native"),
    yes("j-0436-535", {"jax[cuda12]": "==0.4.36"}, "JAX-jax-v0.4.36 plugin_setup.py (nvcc>=12.6.85)",
        t("A100", driver="535.104.05"), cuda_min="12.6", mode="minor-version compatibility"),
    yes("j-0437-560", {"jax[cuda12]": "==0.4.37"}, "JAX-jax-v0.4.37 setup.py (plugin 0.4.36: nvcc>=12.6.85)",
        t("A100", driver="560.35.05"), cuda="12.6"),
    yes("j-0430-535", {"jax[cuda12]": "==0.4.30"}, "JAX-jax-v0.4.30 plugin_setup.py (nvcc>=12.1.105)",
        t("A100", driver="535.104.05"), cuda="12.2", mode="native"),
    no("j-0428-torch241", {"jax[cuda12]": "==0.4.28", "torch": "==2.4.1"},
        "JAX-jax-v0.4.28 setup.py (cudnn<9.0); MONOBASE torch2.4.1 (cuDNN 9.1.0.70)", t("A100"),
        ("frameworks.jax[cuda12]",)),
    no("j-060-torch251", {"jax[cuda12]": "==0.6.0", "torch": "==2.5.1"},
        "JAX-jax-v0.6.0 plugin_setup.py (cudnn>=9.8); PYPI torch-2.5.1 (9.1.0.70)", t("A100"), (V,)),
    yes("j-061-torch280", {"jax[cuda12]": "==0.6.1", "torch": "==2.8.0"},
        "JAX-jax-v0.6.1 plugin_setup.py (nvidia-cublas-cu12<12.9); BUILDCUDA-2.8", t("H100"),
        torch="torch==2.8.0", cuda="12.8"),
    yes("j-061", {"jax[cuda12]": "==0.6.1"}, "JAX-jax-v0.6.1 plugin_setup.py (cublas<12.9)", t("H100"),
        cuda="12.8"),
    yes("j-062", {"jax[cuda12]": "==0.6.2"}, "JAX-jax-v0.6.2 plugin_setup.py (cap lifted)", t("H100"),
        cuda="12.9"),
    no("j-072-13-v100", {"jax[cuda13]": "==0.7.2"}, "JAX-jax-v0.7.2 .bazelrc cuda_v13 (sm_75+); JAX-INSTALL",
        t("V100"), ("targets.gpus.V100",)),
    no("j-072-13-575", {"jax[cuda13]": "==0.7.2"}, "JAX-INSTALL (CUDA 13: driver >= 580)",
        t("H100", driver="575.57.08"), (DRV,)),
    no("j-071-13", {"jax[cuda13]": "==0.7.1"}, "JAX-jax-v0.7.1 .bazelrc (no cuda_v13 config)", t("H100"),
        ("frameworks.jax[cuda13]",)),
    no("j-0110-py311", {"jax[cuda12]": "==0.11.0"}, "JAX-jax-v0.11.0 setup.py (python_requires>=3.12)",
        t("A100", python="==3.11.*"), (PY,)),
    no("j-070-py310", {"jax[cuda12]": "==0.7.0"}, "JAX-jax-v0.7.0 setup.py (python_requires>=3.11)",
        t("A100", python="==3.10.*"), (PY,)),
    no("j-0426-py313", {"jax[cuda12]": "==0.4.26"}, "JAX-jax-v0.4.26 (classifiers 3.9-3.12); PYPI wheel tags",
        t("A100", python="==3.13.*"), (PY,)),
    yes("j-v100-cudnn", {"jax[cuda12]": "*"}, "CUDNN-SM 9.10.2 (5.0-12.0) and 9.11.0 (CC < 7.5 dropped)",
        t("V100"), cudnn="9.10.2.21"),
    yes("j-p100-cudnn", {"jax[cuda12]": "*"}, "CUDNN-SM 9.10.2 / 9.11.0", t("P100"), cudnn="9.10.2.21"),
    yes("j-062-p100", {"jax[cuda12]": "==0.6.2"}, "CUDNN-SM 9.10.2 / 9.11.0; JAX-jax-v0.6.2 (cudnn>=9.8)",
        t("P100"), cudnn="9.10.2.21"),
    yes("j-0426-a100", {"jax[cuda12]": "==0.4.26"}, "JAX-jax-v0.4.26 setup.py (cudnn>=8.9.2.26,<9.0)",
        t("A100"), jax="jax[cuda12]==0.4.26", cudnn_major=8),
    no("j-k80", {"jax[cuda12]": "*"}, "CUDA-RN 2.6.2 (Kepler removed in 12.0)", t("K80"),
        ("targets.gpus.K80",)),
    yes("j-13-fc", {"jax[cuda13]": "*"}, "COMPAT (forward compatibility on data-center GPUs)",
        t("H100", driver="535.104.05", forward_compat=True), mode="forward compatibility"),
    no("j-13-fc-geforce", {"jax[cuda13]": "*"}, "COMPAT (no forward compatibility on GeForce)",
        t("RTX 4090", driver="535.104.05", forward_compat=True), (DRV,)),
    yes("j-570", {"jax[cuda12]": "*"}, "CUDA-RN table 3 (12.8 U1 570.124.06)", t("A100", driver="570.124.06"),
        cuda="12.8", mode="native"),
    yes("j-cpu-aarch64", {"jax[cpu]": "*"}, "PYPI jaxlib aarch64 wheels", t(**GH), cuda=None),
    yes("j-cpu-x86", {"jax[cpu]": "==0.4.30"}, "PYPI jax-0.4.30 [cpu] extra", t(), jax="jax[cpu]==0.4.30"),
    yes("j-13-h100", {"jax[cuda13]": "==0.8.0"},
        "JAX-jax-v0.8.0 (cuda13 plugin); CUDA-RN table 3 (13.1 needs 590.44.01)",
        t("H100", driver="580.95.05"), cuda="13.0", mode="native"),
    yes("j-13-b200", {"jax[cuda13]": "*"}, "JAX-INSTALL (CUDA 13: SM >= 7.5); GPU-OPERATOR (B200 570.133.20)",
        t("B200", driver="580.95.05"), cuda_major=13),
    yes("j-0431-gh200", {"jax[cuda12]": "==0.4.31"}, "PYPI jax-cuda12-plugin 0.4.31 aarch64",
        t("GH200", **GH), cuda_major=12),
    # ---- TensorFlow ----------------------------------------------------------------------------
    no("f-221-py39", {"tensorflow": "==2.21.0"}, "TF-TESTED line 486 (3.10-3.13)", t("T4", python="==3.9.*"),
        (PY,)),
    yes("f-2151-t4", {"tensorflow": "==2.15.1"}, "TF-TESTED line 492 (CUDA 12.2, cuDNN 8.9, 3.9-3.11)",
        t("T4"), cuda="12.2", cudnn="8.9.4.25", python="3.11"),
    yes("f-2141-t4", {"tensorflow": "==2.14.1"}, "TF-TESTED (CUDA 11.8, cuDNN 8.7); PYPI tensorflow-2.14.1",
        t("T4"), cuda="11.8", cudnn="8.7.0.84", nccl="2.16.5"),
    yes("f-2141-py", {"tensorflow": "==2.14.1"},
        "PYPI tensorflow-2.14.1[and-cuda] pins tensorrt==8.5.3.1 (cp36-cp310)", t("T4"), python="3.10"),
    no("f-2141-py311", {"tensorflow": "==2.14.1"}, "PYPI tensorrt-8.5.3.1 has no cp311 wheel",
        t("T4", python="==3.11.*"), (PY,)),
    no("f-2150-trt", {"tensorflow": "==2.15.0"},
        "PYPI tensorflow-2.15.0[and-cuda] pins tensorrt==8.6.1.post1 (absent)", t("T4"), ("frameworks.tensorflow",)),
    yes("f-2171-l4", {"tensorflow": "==2.17.1"}, "PYPI tensorflow-2.17.1 build_info.py (sm_89)", t("L4"),
        runs="sm_89"),
    yes("f-2162-v100", {"tensorflow": "==2.16.2"}, "TF-TESTED (CUDA 12.3, cuDNN 8.9)", t("V100"), cuda="12.3",
        cudnn="8.9.7.29"),
    yes("f-2101-t4", {"tensorflow": "==2.10.1"}, "TF-TESTED (CUDA 11.2, cuDNN 8.1)", t("T4"), cuda="11.2"),
    yes("f-2101-a100", {"tensorflow": "==2.10.1"}, "PYPI tensorflow-2.10.1 build_info.py (compute_80)",
        t("A100"), runs="PTX JIT from compute_80"),
    yes("f-2101-k80", {"tensorflow": "==2.10.1"},
        "PYPI tensorflow-2.10.1 (sm_35); CUDNN-SM 8.2.2 (8.1: SM 3.5+)", t("K80"), cuda="11.2", runs="sm_35"),
    no("f-2151-py312", {"tensorflow": "==2.15.1"}, "TF-TESTED line 492 (3.9-3.11)",
        t("T4", python="==3.12.*"), (PY,)),
    no("f-2101-py311", {"tensorflow": "==2.10.1"}, "TF-TESTED (3.7-3.10)", t(python="==3.11.*"), (PY,)),
    no("f-218-h100-550", {"tensorflow": "~=2.18.0"},
        "PYPI tensorflow-2.18 build_info.py (H100 by PTX only); COMPAT", t("H100", driver="550.54.15"),
        (DRV,)),
    yes("f-2200-v100", {"tensorflow": "==2.20.0"},
        "CUDNN-SM 9.10.2 / 9.11.0; PYPI tensorflow-2.20.0 (cudnn>=9.3)", t("V100"), cudnn="9.10.2.21"),
    yes("f-2210-p100", {"tensorflow": "==2.21.0"}, "CUDNN-SM 9.10.2 / 9.11.0; PYPI tensorflow-2.21.0",
        t("P100"), cudnn="9.10.2.21"),
    # ---- several frameworks --------------------------------------------------------------------
    no("m-231-tf214", {"torch": "==2.3.1", "tensorflow": "==2.14.1"},
        "MONOBASE torch2.3.1-cu118 (nvidia-nccl-cu11==2.20.5); PYPI tensorflow-2.14.1 (==2.16.5)", t("A100"),
        (V,)),
    no("m-222-tf214", {"torch": "==2.2.2", "tensorflow": "==2.14.1"},
        "MONOBASE torch2.2.2-cu118 (nccl 2.19.3); PYPI tensorflow-2.14.1 (2.16.5)", t("A100"), (V,)),
    yes("m-212-tf214", {"torch": "==2.1.2", "tensorflow": "==2.14.1"},
        "MONOBASE torch2.1.2-cu118 (no nvidia-* via torch: bundled)", t("A100"), torch="torch==2.1.2+cu118",
        nccl="2.16.5"),
    yes("m-201-tf214", {"torch": "==2.0.1", "tensorflow": "==2.14.1"}, "MONOBASE torch2.0.1-cu118 (bundled)",
        t("A100"), torch="torch==2.0.1+cu118"),
    no("m-212-tf215", {"torch": "==2.1.2", "tensorflow": "==2.15.1"},
        "PYPI tensorflow-2.15.1 (CUDA 12.2 only); RELEASE-MD 2.1 (11.8, 12.1)", t("A100"),
        ("frameworks.tensorflow",)),
    yes("m-280-tf220", {"torch": "==2.8.0", "tensorflow": "==2.20.0"}, "PYPI torch-2.8.0, tensorflow-2.20.0",
        t("L4"), cudnn="9.10.2.21"),
    yes("m-271-tf220", {"torch": "==2.7.1", "tensorflow": "==2.20.0"},
        "MONOBASE torch2.7.1-cu128 (cuDNN 9.7.1.26, NCCL 2.26.2); PYPI tensorflow-2.20.0 (>=9.3, >=2.25.1)",
        t("L4"), torch="torch==2.7.1+cu128", cudnn="9.7.1.26", nccl="2.26.2"),
    no("m-280-tf221", {"torch": "==2.8.0", "tensorflow": "==2.21.0"},
        "PYPI tensorflow-2.21.0 (nvidia-nccl-cu12>=2.27.7); BUILDCUDA-2.8 / RELEASE-MD 2.8 (NCCL 2.27.3)",
        t("L4"), (V,)),
    no("m-251-tf218", {"torch": "==2.5.1", "tensorflow": "~=2.18.0"}, "PYPI (torch 12.4/12.1/11.8, TF 12.5)",
        t("L4"), (V, "frameworks.tensorflow")),
    yes("m-2110-jax-v100", {"torch": "==2.11.0", "jax[cuda12]": "*"}, "RELEASE-MD 2.11; CUDNN-SM 9.11.0",
        t("V100"), torch="torch==2.11.0+cu126", cuda="12.6", cudnn="9.10.2.21"),
    yes("m-torch-jax13", {"torch": "*", "jax[cuda13]": "*"}, "PYPI torch / jax-cuda13-plugin", t("H100"),
        cuda_major=13),
    no("m-271-jax062", {"torch": "==2.7.1", "jax[cuda12]": "==0.6.2"},
        "JAX-jax-v0.6.2 (cudnn>=9.8); MONOBASE torch2.7.1 (9.5.1.17 / 9.7.1.26)", t("A100"),
        ("frameworks.jax[cuda12]",)),
    yes("m-291-jax072", {"torch": "==2.9.1", "jax[cuda12]": "==0.7.2"}, "PYPI torch-2.9.1; JAX-jax-v0.7.2",
        t("H100"), torch="torch==2.9.1", cuda="12.8", cudnn="9.10.2.21"),
    no("m-231-jax0430", {"torch": "==2.3.1", "jax[cuda12]": "==0.4.30"},
        "PYPI torch-2.3.1 (cuDNN 8.9.2.26); JAX-jax-v0.4.30 (cudnn>=9.0)", t("A100"),
        ("frameworks.jax[cuda12]",)),
    yes("m-241-jax0431", {"torch": "==2.4.1", "jax[cuda12]": "==0.4.31"},
        "MONOBASE torch2.4.1-cu124; JAX-jax-v0.4.31 (nvcc>=12.1.105)", t("H100"), torch="torch==2.4.1+cu124",
        cuda="12.4"),
    yes("m-260-jax053", {"torch": "==2.6.0", "jax[cuda12]": "==0.5.3"},
        "MONOBASE torch2.6.0-cu126; JAX-jax-v0.5.3 (nvcc>=12.6.85)", t("H100"), torch="torch==2.6.0+cu126",
        cuda="12.6"),
    no("m-251-jax053", {"torch": "==2.5.1", "jax[cuda12]": "==0.5.3"},
        "JAX-jax-v0.5.3 (nvcc>=12.6.85); RELEASE-MD 2.5 (11.8, 12.1, 12.4)", t("H100"),
        ("frameworks.jax[cuda12]",)),
    yes("m-three", {"torch": "==2.8.0", "tensorflow": "==2.20.0", "jax[cuda12]": "==0.6.2"},
        "BUILDCUDA-2.8; PYPI tensorflow-2.20.0; JAX-jax-v0.6.2", t("L4"), cudnn="9.10.2.21", nccl="2.27.3"),
    yes("m-2110-tf220-v100", {"torch": "==2.11.0", "tensorflow": "==2.20.0"},
        "RELEASE-MD 2.11; CUDNN-SM 9.11.0", t("V100"), torch="torch==2.11.0+cu126", cudnn="9.10.2.21"),
    # ---- Python ranges -------------------------------------------------------------------------
    yes("p-1131-py311", {"torch": "==1.13.1"}, "PYPI torch-1.13.1 (cp311 wheels; RELEASE-MD says <= 3.10)",
        t("A100", python="==3.11.*"), python="3.11"),
    no("p-2130-py315", {"torch": "==2.13.0"},
        "PYPI torch-2.13.0 (cp310..cp314; RELEASE-MD lists 3.15 experimental)", t("H100", python="==3.15.*"),
        (PY,)),
    yes("p-251-py313", {"torch": "==2.5.1"}, "PYPI torch-2.5.1 (cp39..cp313)", t("H100"), python="3.13"),
    no("p-290-py39", {"torch": "==2.9.0"}, "PYPI torch-2.9.0 (cp310..cp314); RELEASE-MD 2.9",
        t(python="==3.9.*"), (PY,)),
    yes("p-2150-py315", {"torch": "==2.15.0"}, "PYPI torch-2.15.0 (cp311..cp315)",
        t("H100", python="==3.15.*"), python="3.15"),
    no("p-1131-py312", {"torch": "==1.13.1"}, "PYPI torch-1.13.1 (cp37..cp311)", t("A100", python=">=3.12"),
        (PY,)),
    # ---- GPU names as nvidia-smi prints them, and raw compute capabilities ----------------------
    yes("n-gb200", {"torch": "==2.8.0"}, "GPUS (GB200 = CC 10.0); BUILDCUDA-2.8", t("NVIDIA GB200"),
        runs="sm_100"),
    yes("n-v100-smi", {"torch": "==2.11.0"}, "GPUS; RELEASE-MD 2.11", t("Tesla V100-SXM2-32GB"),
        torch="torch==2.11.0+cu126"),
    no("n-5090-smi", {"torch": "==2.6.0"}, "GPUS; COG-ARCH", t("NVIDIA GeForce RTX 5090"), (V,)),
    yes("n-h200-smi", {"torch": "==2.0.1"}, "GPUS; COG-ARCH (2.0.1+cu118 sm_90)", t("NVIDIA H200"),
        torch="torch==2.0.1+cu118"),
    yes("n-cc70", {"torch": "==2.11.0"}, "RELEASE-MD 2.11; CUDNN-SM 9.11.0", t("cc:7.0"),
        torch="torch==2.11.0+cu126"),
    yes("n-sm100", {"torch": "==2.7.1"}, "COG-ARCH gpuFloors", t("sm_100"), torch="torch==2.7.1+cu128"),
    yes("n-a100-smi", {"tensorflow": "==2.10.1"}, "GPUS; PYPI tensorflow-2.10.1 (compute_80)",
        t("NVIDIA A100-SXM4-80GB"), runs="PTX JIT from compute_80"),
    # ---- glibc ---------------------------------------------------------------------------------
    no("l-217-new-torch", {"torch": ">=2.7"}, "PYPI torch-2.7 (manylinux_2_28)", t("A100", glibc="2.17"),
        ("targets.glibc",)),
    yes("l-217-old-torch", {"torch": "*"}, "PYPI torch-2.6.0 (glibc 2.17 despite manylinux1)",
        t("A100", glibc="2.17"), torch_below="2.7"),
]
# fmt: on


def _mismatches(row: Row, s: Solution) -> list[str]:
    out = []

    def req(name: str, platform: str = "linux-64") -> str | None:
        return next(
            (f.builds[platform].requirement for f in s.frameworks if f.name == name and platform in f.builds),
            None,
        )

    runs = " | ".join(g.runs_via for g in s.gpus)
    archs = {a for f in s.frameworks for b in f.builds.values() for a in b.archs}
    for key, want in row.facts.items():
        got: Any
        if key in ("torch", "tensorflow", "jax"):
            got, ok = req(key), req(key) == want
        elif key == "aarch64":
            got = req(next(iter(row.frameworks)).split("[")[0], "linux-aarch64")
            ok = got == want
        elif key in ("cuda", "cudnn", "nccl", "python"):
            got = getattr(s, key)
            ok = got == want
        elif key == "mode":
            got, ok = s.driver_mode, s.driver_mode == want
        elif key == "min_driver":
            got, ok = s.min_driver, s.min_driver == want
        elif key == "cuda_min":
            got = s.cuda
            ok = got is not None and Version(got) >= Version(want)
        elif key == "cuda_major":
            got = s.cuda
            ok = got is not None and Version(got).major == want
        elif key == "cudnn_major":
            got = s.cudnn
            ok = got is not None and Version(got).major == want
        elif key == "runs":
            got, ok = runs, want in runs
        elif key == "archs":
            got, ok = sorted(archs), want in archs
        elif key == "torch_below":
            got = next(f.version for f in s.frameworks if f.name == "torch")
            ok = Version(got) < Version(want)
        else:
            raise AssertionError(f"unknown fact {key!r}")
        if not ok:
            out.append(f"{key}: expected {want!r}, got {got!r}")
    return out


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_published_scenario(real_matrix: Matrix, row: Row) -> None:
    data = profile(dict(row.frameworks), **row.targets)
    parsed = parse_profile(data, "test.toml")
    if row.fixed_by is None:
        s = solve(parsed, real_matrix)
        wrong = _mismatches(row, s)
        assert not wrong, f"{row.id} [{row.source}]: " + "; ".join(wrong)
        return
    problem = make_problem(parsed, real_matrix)
    found = search(problem, real_matrix)
    assert not isinstance(found, Found), f"{row.id} [{row.source}]: expected no stack, got one"
    relaxed = search(problem.without(*row.fixed_by), real_matrix)
    assert isinstance(relaxed, Found), (
        f"{row.id} [{row.source}]: relaxing {', '.join(row.fixed_by)} should give a stack: {relaxed}"
    )


def test_the_table_is_large_and_every_row_cites_a_source() -> None:
    assert len(ROWS) > 100
    assert len({r.id for r in ROWS}) == len(ROWS)
    for row in ROWS:
        assert row.source.strip(), row.id
