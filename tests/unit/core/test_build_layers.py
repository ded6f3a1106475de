"""The layer plan: kinds, order, one layer per package, stable buckets when there are many."""

from __future__ import annotations

from envctl.core.layers import layer_kind, normalise, plan_layers
from envctl.core.lock import LockEntry


def _file(name: str, version: str = "1.0", sha: str = "a") -> LockEntry:
    return LockEntry("pip", name, version, "linux-64", f"file:///w/{name}.whl", sha256=sha * 64)


def test_kinds() -> None:
    assert layer_kind("nvidia-cudnn-cu12") == "cuda"
    assert layer_kind("torch") == "framework"
    assert layer_kind("Jax_Lib") == "package"  # normalised: jax-lib is not jaxlib
    assert layer_kind("jaxlib") == "framework"
    assert layer_kind("six") == "package"
    assert normalise("Foo__Bar.baz") == "foo-bar-baz"


def test_plan_orders_cuda_framework_packages_metadata() -> None:
    plan = plan_layers((_file("six"), _file("torch"), _file("nvidia-nccl-cu12"), _file("numpy")))
    assert [(p.kind, p.name) for p in plan] == [
        ("cuda", "cuda:nvidia-nccl-cu12"),
        ("framework", "framework:torch"),
        ("package", "package:numpy"),
        ("package", "package:six"),
        ("metadata", "metadata"),
    ]
    assert plan[1].summary() == "torch 1.0"


def test_input_order_does_not_matter() -> None:
    files = tuple(_file(f"p{i}") for i in range(10))
    assert plan_layers(files) == plan_layers(tuple(reversed(files)))


def test_many_packages_are_bucketed_and_one_change_touches_one_bucket() -> None:
    files = (*tuple(_file(f"pkg{i:03d}") for i in range(200)), _file("torch"))
    plan = plan_layers(files, max_package_layers=16)
    package_layers = [p for p in plan if p.kind == "package"]
    assert len(package_layers) <= 15
    assert sum(len(p.packages) for p in package_layers) == 200
    changed = tuple(f if f.name != "pkg042" else _file("pkg042", "2.0", "b") for f in files)
    after = plan_layers(changed, max_package_layers=16)
    differing = [a.name for a, b in zip(plan, after, strict=True) if a != b]
    assert len(differing) == 1 and differing[0].startswith("package:bucket-")
