"""``envctl smoke IMAGE``: import every package of the environment inside a container.

The container runs with no network. The check (``envctl.node.smoke.SCRIPT``, which the node
agent runs for ``envctl verify`` too) lists the distributions installed in the env's
site-packages (the lock's packages), imports each one's top-level modules, and reports versions and
the GPUs that torch / jax / tensorflow see (an empty list on a machine without GPUs).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from typing import Any

from envctl.errors import BuildError, BuildFailure
from envctl.node.smoke import SCRIPT


@dataclass(frozen=True)
class SmokeResult:
    image: str
    python: str
    packages: tuple[dict[str, Any], ...]
    gpus: dict[str, Any]
    gpu_requested: bool
    labels: dict[str, str] = field(default_factory=dict)
    platform: str = "linux/amd64"
    emulated: bool = False  # run under qemu-user-static (another architecture than this machine's)

    @property
    def ok(self) -> bool:
        """Every package imported."""
        return all(p["ok"] for p in self.packages)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, schema ``envctl.smoke/1``."""
        return {
            "schema": "envctl.smoke/1",
            "image": self.image,
            "ok": self.ok,
            "python": self.python,
            "packages": list(self.packages),
            "gpus": self.gpus,
            "gpu_requested": self.gpu_requested,
            "labels": self.labels,
            "platform": self.platform,
            "emulated": self.emulated,
        }


def smoke(image: str, gpus: bool | None = None) -> SmokeResult:
    """Run the import check in a container; ``gpus`` None: request GPUs when nvidia-smi exists.

    An image of another architecture than this machine's runs under qemu-user-static (binfmt_misc):
    an aarch64 image's imports are checked on an x86_64 machine.
    """
    from envctl.adapters.docker_engine import image_architecture, image_labels, run_container
    from envctl.adapters.rootfs import host_arch, require_emulation

    labels = image_labels(image)
    arch = image_architecture(image)
    foreign = arch != host_arch()
    if foreign:
        try:
            require_emulation(arch)
        except BuildError as exc:
            raise BuildFailure(f"{image}: a linux/{arch} image: {exc.message}", hint=exc.hint) from exc
    prefix = labels.get("dev.envctl.env.prefix")
    python = f"{prefix}/bin/python" if prefix else "python3"
    want_gpus = shutil.which("nvidia-smi") is not None if gpus is None else gpus
    result = run_container(image, [python, "-c", SCRIPT], want_gpus, f"linux/{arch}" if foreign else None)
    if result.exit_code != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise BuildFailure(f"{image}: smoke container exited {result.exit_code}: {tail}")
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BuildFailure(f"{image}: smoke output is not JSON: {result.stdout[-200:]}") from exc
    return SmokeResult(
        image=image,
        python=str(data["python"]),
        packages=tuple(data["packages"]),
        gpus=dict(data["gpus"]),
        gpu_requested=want_gpus,
        labels={k: v for k, v in labels.items() if k.startswith("dev.envctl.")},
        platform=f"linux/{arch}",
        emulated=foreign,
    )
