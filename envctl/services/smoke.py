"""``envctl smoke IMAGE``: import every package of the environment inside a container.

The container runs with no network. It lists the distributions installed in the env's
site-packages (the lock's packages), imports each one's top-level modules, and reports versions and
the GPUs that torch / jax / tensorflow see (an empty list on a machine without GPUs).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from typing import Any

from envctl.errors import BuildFailure

# Runs inside the image's Python; only the standard library may be assumed.
_SCRIPT = r"""
import importlib, importlib.metadata as md, json, sys, site
out = {"python": sys.version.split()[0], "packages": [], "gpus": {}}
site_dirs = [p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)]
def tops(dist):
    text = dist.read_text("top_level.txt")
    if text:
        return sorted({t.strip() for t in text.split() if t.strip()})
    names = set()
    for f in dist.files or []:
        parts = f.parts
        if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
            continue
        if len(parts) > 1 or parts[0].endswith(".py"):
            names.add(parts[0][:-3] if parts[0].endswith(".py") else parts[0])
    return sorted(names)
mods = {}
for dist in sorted(md.distributions(path=site_dirs), key=lambda d: d.metadata["Name"].lower()):
    entry = {"name": dist.metadata["Name"], "version": dist.version, "modules": {}, "ok": True}
    for name in tops(dist):
        try:
            module = importlib.import_module(name)
            mods[name] = module
            entry["modules"][name] = str(getattr(module, "__version__", ""))
        except Exception as exc:
            entry["ok"] = False
            entry["modules"][name] = "error: %s: %s" % (type(exc).__name__, exc)
    out["packages"].append(entry)
def probe(name, fn):
    if name in mods:
        try:
            out["gpus"][name] = fn(mods[name])
        except Exception as exc:
            out["gpus"][name] = "error: %s" % exc
probe("torch", lambda t: [t.cuda.get_device_name(i) if hasattr(t.cuda, "get_device_name")
      else str(i) for i in range(t.cuda.device_count())] if t.cuda.is_available() else [])
probe("jax", lambda j: [str(d) for d in j.devices() if d.platform == "gpu"])
probe("tensorflow", lambda tf: [d.name for d in tf.config.list_physical_devices("GPU")])
print(json.dumps(out))
"""


@dataclass(frozen=True)
class SmokeResult:
    image: str
    python: str
    packages: tuple[dict[str, Any], ...]
    gpus: dict[str, Any]
    gpu_requested: bool
    labels: dict[str, str] = field(default_factory=dict)

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
        }


def smoke(image: str, gpus: bool | None = None) -> SmokeResult:
    """Run the import check in a container; ``gpus`` None: request GPUs when nvidia-smi exists."""
    from envctl.adapters.docker_engine import image_labels, run_container

    labels = image_labels(image)
    prefix = labels.get("dev.envctl.env.prefix")
    python = f"{prefix}/bin/python" if prefix else "python3"
    want_gpus = shutil.which("nvidia-smi") is not None if gpus is None else gpus
    result = run_container(image, [python, "-c", _SCRIPT], want_gpus)
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
    )
