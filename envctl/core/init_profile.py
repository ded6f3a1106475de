"""What ``envctl init`` makes of the files a team already has: a profile document. Pure.

The readers (``adapters.team_files``) turn a requirements.txt, environment.yml, pyproject.toml
or pylock.toml into a ``TeamFile``; ``draft_profile`` moves the frameworks (torch, tensorflow,
jax, jaxlib) under ``[frameworks]``, where the CUDA/driver solver picks their builds, leaves
out the CUDA pins the solver chooses itself, and says what it moved and dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from envctl.core.profile import framework_of
from envctl.errors import InputError

#: conda names of the frameworks -> their [frameworks] key
CONDA_FRAMEWORKS = {
    "pytorch": "torch",
    "pytorch-gpu": "torch",
    "pytorch-cpu": "torch",
    "tensorflow": "tensorflow",
    "tensorflow-gpu": "tensorflow",
    "tensorflow-cpu": "tensorflow",
    "jax": "jax",
    "jaxlib": "jax",
}
#: conda packages that pin the CUDA stack or the build variant: the solver chooses those
CONDA_SOLVER_OWNED = {
    "cudatoolkit",
    "pytorch-cuda",
    "cuda-version",
    "cudnn",
    "nccl",
    "pytorch-mutex",
    "cpuonly",
}
#: pip wheels of NVIDIA's CUDA libraries (nvidia-cudnn-cu12): pulled in by the framework build
_NVIDIA_WHEEL = re.compile(r"^nvidia-[a-z0-9-]+-cu\d+$")
_CONDA_NAME = re.compile(r"^\s*(?:[A-Za-z0-9_.\-/:]+::)?([A-Za-z0-9_.\-]+)\s*(.*)$")


@dataclass(frozen=True)
class TeamFile:
    """The requirements of one file a team has, as its reader found them."""

    source: str  # the file, for messages
    kind: str  # requirements | environment | pyproject | pylock
    pip: tuple[str, ...] = ()  # PEP 508 requirements
    conda: tuple[str, ...] = ()  # conda match specs
    channels: tuple[str, ...] = ()
    python: str = ""  # PEP 440 specifier ("" when the file names none)
    name: str = ""  # the environment's or project's name, when the file has one
    notes: tuple[str, ...] = ()  # what the reader left out, and why


@dataclass(frozen=True)
class InitTargets:
    """The targets ``init`` writes (options or answers); empty: the profile's defaults."""

    arch: tuple[str, ...] = ()
    gpus: tuple[str, ...] = ()
    driver: str | None = None


@dataclass(frozen=True)
class Draft:
    """A profile document and what was done to the team's requirements to make it."""

    document: dict[str, Any]
    moved: tuple[str, ...]  # "torch==2.4.1 -> [frameworks] torch = \"==2.4.1\""
    notes: tuple[str, ...]


def profile_name(*candidates: str) -> str:
    """The first candidate made into a profile name (letters, digits, '-', '_', '.'), else "env"."""
    for candidate in candidates:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", candidate).strip("-.")
        if name:
            return name[:64]
    return "env"


def conda_to_pep440(spec: str, where: str) -> str:
    """A conda version spec (``=2.1``, ``2.1.*``, ``>=2.1,<3``, ``2.1.0``) as a PEP 440 specifier."""
    spec = spec.strip().split()[0] if spec.strip() else ""  # a build string after a space is dropped
    if not spec or spec == "*":
        return ""
    if "|" in spec:
        raise InputError(
            f"{where}: {spec!r}: alternatives ('|') have no PEP 440 form",
            hint="write one range, e.g. '>=2.1,<2.3', in the file or under [frameworks]",
        )
    out = []
    for part in spec.split(","):
        part = part.strip()
        if part.startswith("=") and not part.startswith("=="):  # conda's "=2.1" is "2.1.*"
            part = "==" + part[1:].removesuffix(".*") + ".*"
        elif part[:1].isdigit():
            part = "==" + part
        out.append(part)
    result = ",".join(out)
    try:
        SpecifierSet(result)
    except InvalidSpecifier:
        raise InputError(f"{where}: {spec!r} is not a version range envctl understands") from None
    return result


def draft_profile(team: TeamFile, *, name: str, python: str | None, targets: InitTargets) -> Draft:
    """The profile for ``team``: frameworks under ``[frameworks]``, the rest under ``[packages]``.

    ``python`` (a PEP 440 specifier) replaces the file's. Raises InputError naming the file for
    a requirement that cannot be read.
    """
    frameworks: dict[str, tuple[set[str], SpecifierSet]] = {}
    moved: list[str] = []
    notes = list(team.notes)
    pip: list[str] = []

    def add_framework(framework: str, extras: set[str], spec: str, origin: str) -> None:
        local = [s for s in SpecifierSet(spec) if "+" in s.version]
        if local:  # torch==2.4.1+cu121: the build is the solver's to pick for the targets
            spec = ",".join(str(s).split("+")[0] if s in local else str(s) for s in SpecifierSet(spec))
            notes.append(f"{origin}: the local label (+...) dropped; the solver picks {framework}'s build")
        old_extras, old_spec = frameworks.get(framework, (set(), SpecifierSet()))
        frameworks[framework] = (old_extras | extras, old_spec & SpecifierSet(spec))
        moved.append(f"{origin} -> [frameworks] {framework}")

    for line in team.pip:
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise InputError(
                f"{team.source}: invalid requirement {line[:120]!r}: {str(exc).splitlines()[0]}"
            ) from None
        name_ = canonicalize_name(requirement.name)
        framework = framework_of(name_)
        if framework is not None:
            if requirement.url:
                notes.append(f"{line[:120]}: a direct URL; the solver picks {framework}'s build instead")
            if requirement.marker is not None:
                notes.append(f"{line[:120]}: marker '{requirement.marker}' dropped under [frameworks]")
            extras = set(requirement.extras) if name_ == framework else set()
            add_framework(framework, extras, str(requirement.specifier), line)
        elif _NVIDIA_WHEEL.match(name_) or name_ == "triton":
            notes.append(f"{line[:120]}: left out; the framework build the solver picks brings its own")
        else:
            pip.append(line)

    conda: list[str] = []
    python_spec = team.python
    for spec in team.conda:
        match = _CONDA_NAME.match(spec)
        if not match:
            raise InputError(f"{team.source}: cannot read the conda spec {spec[:120]!r}")
        conda_name, version = match.group(1).lower(), match.group(2)
        where = f"{team.source}: {spec.strip()[:120]}"
        if conda_name == "python":
            python_spec = python_spec or conda_to_pep440(version, where)
        elif conda_name in CONDA_FRAMEWORKS:
            add_framework(CONDA_FRAMEWORKS[conda_name], set(), conda_to_pep440(version, where), spec.strip())
        elif conda_name in CONDA_SOLVER_OWNED:
            notes.append(
                f"{spec.strip()}: left out; the solver chooses CUDA, cuDNN and NCCL for the frameworks"
            )
        elif conda_name == "pip":
            continue  # the installer itself: envctl installs wheels without it
        else:
            conda.append(spec.strip())

    environment: dict[str, Any] = {"name": name, "description": f"made by `envctl init` from {team.source}"}
    if python or python_spec:
        environment["python"] = python or python_spec
    document: dict[str, Any] = {"environment": environment}
    if frameworks:
        document["frameworks"] = {
            (f"{key}[{','.join(sorted(extras))}]" if extras else key): str(spec) or "*"
            for key, (extras, spec) in sorted(frameworks.items())
        }
    packages: dict[str, Any] = {}
    if pip:
        packages["pip"] = pip
    if conda:
        packages["conda"] = conda
        packages["channels"] = list(team.channels) or ["conda-forge"]
        if not team.channels:
            notes.append("no conda channels named: conda-forge is assumed")
    if packages:
        document["packages"] = packages
    target_table: dict[str, Any] = {"arch": list(targets.arch) or ["x86_64"]}
    if targets.gpus:
        target_table["gpus"] = list(targets.gpus)
    if targets.driver:
        target_table["driver"] = targets.driver
    document["targets"] = target_table
    if frameworks and not targets.gpus:
        notes.append("no GPUs named: the frameworks are solved CPU-only (pass --gpu NAME for CUDA builds)")
    return Draft(document, tuple(moved), tuple(notes))
