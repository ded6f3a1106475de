"""Read and validate a profile TOML file into a ``Profile``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from envctl.adapters.files import read_toml
from envctl.adapters.package_data import data_dir
from envctl.core.profile import ARCHES, FrameworkRequest, Profile, Targets
from envctl.core.schema import Table
from envctl.errors import InputError

KNOWN_FRAMEWORKS = ("torch", "tensorflow", "jax")


def load_profile(path: Path) -> tuple[Profile, str]:
    """Parse a profile; returns it with the sha256 of its canonical JSON form (the lock's input hash)."""
    if not path.exists():
        examples = data_dir("profiles")
        hint = f"example profiles: {examples}" if examples else "check the path"
        raise InputError(f"{path}: no such profile", hint=hint)
    data = read_toml(path, "profile")
    return parse_profile(data, path), profile_hash(data)


def profile_hash(data: dict[str, Any]) -> str:
    """Content hash over canonical JSON: formatting and comments do not change it."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_profile(data: dict[str, Any], path: Path | str) -> Profile:
    doc = Table(data, path)
    env = doc.table("environment")
    name = env.str("name")
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise env.fail("name", f"expected letters, digits, '-', '_' or '.', got {name!r}")
    python = env.spec("python", SpecifierSet())
    description = env.str("description", "")
    base_image = env.str("base_image", None)
    env.done()

    frameworks = []
    fw_table = doc.table("frameworks", None)
    if fw_table is not None:
        for key, value in fw_table.items():
            frameworks.append(_framework(fw_table, key, value))

    pkgs = doc.table("packages", None)
    pip: tuple[str, ...] = ()
    conda: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    if pkgs is not None:
        pip = pkgs.strs("pip", ())
        for line in pip:
            try:
                Requirement(line)
            except InvalidRequirement as exc:
                detail = str(exc).splitlines()[0]
                raise pkgs.fail("pip", f"invalid requirement {line!r}: {detail}") from None
        conda = pkgs.strs("conda", ())
        channels = pkgs.strs("channels", ())
        if conda and not channels:
            raise pkgs.fail("channels", "conda packages need at least one channel")
        pkgs.done()

    targets = _targets(doc.table("targets", None))
    blas_table = doc.table("blas", None)
    blas = "auto"
    if blas_table is not None:
        blas = blas_table.choice("prefer", ("auto", "mkl", "openblas"), "auto")
        blas_table.done()
    doc.done()
    return Profile(
        name=name,
        python=python,
        frameworks=tuple(frameworks),
        pip=pip,
        conda=conda,
        channels=channels,
        targets=targets,
        blas=blas,
        base_image=base_image,
        description=description,
        path=str(path),
    )


def _framework(table: Table, key: str, value: Any) -> FrameworkRequest:
    where = f"frameworks.{key}"
    name, _, extra = key.partition("[")
    extras: tuple[str, ...] = tuple(e.strip() for e in extra.rstrip("]").split(",") if e.strip())
    if name not in KNOWN_FRAMEWORKS:
        raise table.fail(
            key,
            f"unknown framework {name!r}",
            hint=f"known: {', '.join(KNOWN_FRAMEWORKS)}; other packages go under [packages] pip",
        )
    if isinstance(value, str):
        spec = table.parse_spec(key, value)
    elif isinstance(value, dict):
        sub = Table(value, table.path, where)
        spec = sub.spec("version", SpecifierSet())
        extras = extras + sub.strs("extras", ())
        sub.done()
    else:
        raise table.fail(key, "expected a version range string or a table with 'version'")
    return FrameworkRequest(name, spec, extras, where)


def _targets(t: Table | None) -> Targets:
    if t is None:
        return Targets()
    arches = t.strs("arch", ("x86_64",))
    platforms = tuple(_platform(t, "arch", a) for a in arches)
    gpu_arches = t.strs("gpu_arch", None)
    gpu_platforms = None if gpu_arches is None else tuple(_platform(t, "gpu_arch", a) for a in gpu_arches)
    driver = t.version("driver", None)
    glibc = t.version("glibc", None)
    targets = Targets(
        platforms=tuple(dict.fromkeys(platforms)),
        gpus=t.strs("gpus", ()),
        gpu_platforms=gpu_platforms,
        driver=driver,
        cpu_vendor=t.choice("cpu_vendor", ("intel", "amd", "any"), "any"),
        glibc=glibc,
        forward_compat=t.bool("forward_compat", False),
    )
    if gpu_platforms is not None and not set(gpu_platforms) <= set(targets.platforms):
        raise t.fail("gpu_arch", "names an arch that is not in 'arch'")
    t.done()
    return targets


def _platform(t: Table, key: str, arch: str) -> str:
    if arch in ARCHES:
        return ARCHES[arch]
    if arch in ARCHES.values():
        return arch
    raise t.fail(key, f"unknown CPU arch {arch!r}", hint="use x86_64 or aarch64")


def apply_overrides(
    profile: Profile,
    *,
    gpus: tuple[str, ...] = (),
    driver: str | None = None,
    arch: tuple[str, ...] = (),
) -> Profile:
    """Command-line targets (--gpu, --driver, --arch) replace the profile's."""
    targets = profile.targets
    if gpus:
        targets = replace(targets, gpus=gpus)
    if driver is not None:
        table = Table({"driver": driver}, "--driver")
        targets = replace(targets, driver=table.version("driver"))
    if arch:
        table = Table({"arch": list(arch)}, "--arch")
        platforms = tuple(dict.fromkeys(_platform(table, "arch", a) for a in arch))
        gpu_platforms = targets.gpu_platforms
        if gpu_platforms is not None:
            gpu_platforms = tuple(p for p in gpu_platforms if p in platforms) or None
        targets = replace(targets, platforms=platforms, gpu_platforms=gpu_platforms)
    return replace(profile, targets=targets)
