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

from envctl.errors import BuildError, BuildFailure

# Runs inside the image's Python; only the standard library may be assumed.
_SCRIPT = r"""
import importlib, importlib.metadata as md, importlib.util, json, sys
out = {"python": sys.version.split()[0], "packages": [], "gpus": {}}
site_dirs = [p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)]
def tops(dist):
    # top_level.txt when present (entries may be paths: "nvidia/cudnn"); else packages with an
    # __init__.py and top-level modules from RECORD. Private names ("_foo") and auditwheel's
    # "*.libs" folders are not import targets.
    names = set()
    text = dist.read_text("top_level.txt")
    if text:
        for entry in text.split():
            entry = entry.strip().replace("/", ".")
            if entry.endswith(".__init__"):
                entry = entry[: -len(".__init__")]
            names.add(entry)
    else:
        for f in dist.files or []:
            parts = f.parts
            if len(parts) == 2 and parts[1] == "__init__.py":
                names.add(parts[0])
            elif len(parts) == 1 and parts[0].endswith((".py", ".so")):
                names.add(parts[0].split(".")[0])
    return sorted(
        n for n in names
        if n and not n.split(".")[-1].startswith("_")
        and all(part.isidentifier() for part in n.split("."))
    )
mods = {}
for dist in sorted(md.distributions(path=site_dirs), key=lambda d: d.metadata["Name"].lower()):
    entry = {"name": dist.metadata["Name"], "version": dist.version, "modules": {}, "ok": True}
    found = 0
    for name in tops(dist):
        try:
            spec = importlib.util.find_spec(name)
        except Exception as exc:
            spec, entry["ok"] = None, False
            entry["modules"][name] = "error: %s: %s" % (type(exc).__name__, exc)
            continue
        if spec is None:  # listed by stale metadata (or a wheel's stray folder): not shipped
            entry["modules"][name] = "absent"
            continue
        found += 1
        targets = [name]
        if spec.origin in (None, "namespace"):
            # a bare folder (nvidia/, jaraco/): import the dist's own packages inside it, never
            # the folder alone, which proves nothing and could shadow a real package
            entry["modules"][name] = "namespace"
            targets = sorted({"%s.%s" % (name, f.parts[1]) for f in dist.files or []
                              if len(f.parts) == 3 and f.parts[0] == name
                              and f.parts[2] == "__init__.py"})
        for target in targets:
            try:
                module = importlib.import_module(target)
                mods[target] = module
                entry["modules"][target] = str(getattr(module, "__version__", ""))
            except Exception as exc:
                entry["ok"] = False
                entry["modules"][target] = "error: %s: %s" % (type(exc).__name__, exc)
    if entry["modules"] and not found:
        entry["ok"] = False
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
    result = run_container(image, [python, "-c", _SCRIPT], want_gpus, f"linux/{arch}" if foreign else None)
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
