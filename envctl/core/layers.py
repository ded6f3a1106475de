"""Which package goes into which image layer.

Layers are ordered from what changes least to what changes most, so that a registry or node that
holds an older image already has the bottom of the new one:

    cuda        nvidia-* runtime libraries (CUDA, cuDNN, NCCL, ...): huge, change with the stack
    framework   torch, tensorflow, jax, triton, ...: big, change with the framework version
    package     everything else, one layer per package (bucketed when there are too many)
    metadata    the venv skeleton, the lock itself and the SBOM: tiny, changes with every lock

A layer's identity is the set of package hashes in it, so changing one small package changes only
the layer that holds it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from envctl.core.lock import LockEntry

#: distributions that are big enough to deserve a layer of their own, ahead of ordinary packages
FRAMEWORKS: frozenset[str] = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "triton",
        "pytorch-triton",
        "tensorflow",
        "tensorflow-cpu",
        "tf-nightly",
        "tensorflow-io-gcs-filesystem",
        "keras",
        "jax",
        "jaxlib",
        "jax-cuda12-plugin",
        "jax-cuda12-pjrt",
        "jax-cuda13-plugin",
        "jax-cuda13-pjrt",
        "flax",
        "xformers",
        "flash-attn",
        "vllm",
        "deepspeed",
        "transformers",
        "pytorch",  # conda's name for torch
        "cudatoolkit",
        "cuda-toolkit",
    }
)

#: leaves room under the kernel's overlayfs limit (~128 lower layers) for the base image's layers
MAX_PACKAGE_LAYERS = 64


@dataclass(frozen=True)
class LayerPlan:
    """One layer to build: its kind, a stable name and the packages in it (sorted by name)."""

    kind: str  # "cuda" | "framework" | "package" | "metadata"
    name: str
    packages: tuple[LockEntry, ...]

    def summary(self) -> str:
        """Human-readable contents, e.g. ``torch 2.5.1`` or ``4 packages``."""
        if self.kind == "metadata":
            return "lock, SBOM, venv skeleton"
        if len(self.packages) == 1:
            return f"{self.packages[0].name} {self.packages[0].version}"
        return ", ".join(f"{p.name} {p.version}" for p in self.packages)


def normalise(name: str) -> str:
    """PEP 503 name normalisation (``Foo_Bar`` -> ``foo-bar``)."""
    out = []
    previous_dash = False
    for char in name.lower():
        if char in "-_.":
            if not previous_dash:
                out.append("-")
            previous_dash = True
        else:
            out.append(char)
            previous_dash = False
    return "".join(out)


def layer_kind(name: str) -> str:
    """The layer kind a package belongs to."""
    normalised = normalise(name)
    if normalised.startswith(("nvidia-", "cuda-", "libcu", "libnccl", "libcudnn")):
        return "cuda"
    if normalised in FRAMEWORKS:
        return "framework"
    return "package"


def _bucket(name: str, buckets: int) -> int:
    # A stable hash (not Python's salted hash()) so every machine plans the same layers.
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % buckets


def plan_layers(
    packages: tuple[LockEntry, ...], max_package_layers: int = MAX_PACKAGE_LAYERS
) -> tuple[LayerPlan, ...]:
    """Group the lock's files into layers: one per package, bucketed by name when too many.

    Returns cuda layers, then framework layers, then package layers, then the metadata layer,
    each group sorted by name, so the same lock always gives the same plan.
    """
    by_kind: dict[str, list[LockEntry]] = {"cuda": [], "framework": [], "package": []}
    for package in sorted(packages, key=lambda p: (p.name, p.manager, p.filename)):
        by_kind[layer_kind(package.name)].append(package)
    plans: list[LayerPlan] = []
    total = sum(len(group) for group in by_kind.values())
    for kind in ("cuda", "framework", "package"):
        group = by_kind[kind]
        if total <= max_package_layers or kind != "package":
            plans.extend(LayerPlan(kind, f"{kind}:{p.name}", (p,)) for p in group)
            continue
        budget = max(1, max_package_layers - len(by_kind["cuda"]) - len(by_kind["framework"]))
        buckets: dict[int, list[LockEntry]] = {}
        for package in group:
            buckets.setdefault(_bucket(package.name, budget), []).append(package)
        plans.extend(
            LayerPlan(kind, f"{kind}:bucket-{index:02d}", tuple(members))
            for index, members in sorted(buckets.items())
        )
    plans.append(LayerPlan("metadata", "metadata", ()))
    return tuple(plans)
