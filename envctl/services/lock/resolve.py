"""Resolve one platform of a solution: the PyPI side and the conda side, each by its resolver."""

from __future__ import annotations

from datetime import datetime

from envctl.core.lock import LockEntry, LockInputs, LockOptions
from envctl.core.progress import NullProgress, Progress
from envctl.core.resolvers import (
    CondaRequest,
    PinnedCondaPackage,
    PinnedWheel,
    PipRequest,
    Resolvers,
)
from envctl.core.solution import PlatformRequest


def default_resolvers(progress: Progress | None = None) -> Resolvers:
    """uv for the PyPI side (its report goes to ``progress``), rattler for the conda side."""
    from envctl.adapters.rattler import RattlerSolver
    from envctl.adapters.uv import UvResolver

    return Resolvers(pip=UvResolver(progress=progress), conda=RattlerSolver())


def resolve_platform(
    request: PlatformRequest,
    options: LockOptions,
    inputs: LockInputs,
    resolvers: Resolvers,
    progress: Progress | None = None,
) -> tuple[LockEntry, ...]:
    """Every pinned file of one platform: conda packages first, then pip wheels.

    ``progress`` gets a note as each side starts (where it reads from) and ends (how many files).
    """
    report = progress or NullProgress()
    conda: tuple[PinnedCondaPackage, ...] = ()
    if request.conda_specs:
        channels = options.channels or request.conda_channels
        report.note(f"{request.platform}: conda solve (rattler) from {', '.join(channels)}")
        # A local channel is a frozen set already (and its index time is when it was copied).
        local = all(channel.startswith("file://") for channel in channels)
        conda = resolvers.conda.solve(
            CondaRequest(
                platform=request.platform,
                channels=channels,
                specs=request.conda_specs,
                virtual_packages=virtual_packages(request),
                exclude_newer=None
                if local
                else datetime.fromisoformat(inputs.exclude_newer.replace("Z", "+00:00")),
                offline=options.offline,
            )
        )
        report.note(f"{request.platform}: {len(conda)} conda packages")
    pip: tuple[PinnedWheel, ...] = ()
    if request.requirements:
        where = options.index_url or "PyPI"
        if options.offline:
            where = "local wheels (offline)"
        report.note(f"{request.platform}: pip resolve (uv) from {where}")
        pip = resolvers.pip.resolve(
            PipRequest(
                requirements=request.requirements,
                constraints=request.constraints,
                python_version=request.python_version,
                python_platform=request.python_platform,
                exclude_newer=None if options.offline else inputs.exclude_newer,
                exclude_newer_packages=inputs.exclude_newer_packages,
                pins=request.indexes,
                index_url=options.index_url,
                find_links=tuple(str(p.resolve()) for p in options.find_links),
                offline=options.offline,
                label=request.platform,
            )
        )
        report.note(f"{request.platform}: {len(pip)} pip files")
    return tuple(_conda_entry(request.platform, c) for c in conda) + tuple(
        _pip_entry(request.platform, w) for w in pip
    )


def virtual_packages(request: PlatformRequest) -> dict[str, str]:
    """The target's virtual packages: the request's own, completed from its expectations.

    Never detected from the machine that runs the lock.
    """
    expect = request.expect
    derived = {"__unix": "0", "__archspec": expect.cpu_arch}
    if expect.glibc:
        derived["__glibc"] = expect.glibc
    if expect.cuda and not expect.cpu_only:
        derived["__cuda"] = expect.cuda
    return {**derived, **request.virtual_packages}


def _pip_entry(platform: str, wheel: PinnedWheel) -> LockEntry:
    return LockEntry(
        manager="pip",
        name=wheel.name,
        version=wheel.version,
        platform=platform,
        url=wheel.url,
        sha256=wheel.sha256,
        dependencies=tuple((dep, "*") for dep in wheel.dependencies),
        index=wheel.index,
    )


def _conda_entry(platform: str, package: PinnedCondaPackage) -> LockEntry:
    deps: dict[str, str] = {}
    for spec in package.depends:
        name, _, rest = spec.partition(" ")
        deps[name] = rest.strip() or "*"
    return LockEntry(
        manager="conda",
        name=package.name,
        version=package.version,
        platform=platform,
        url=package.url,
        sha256=package.sha256,
        md5=package.md5,
        dependencies=tuple(sorted(deps.items())),
        build=package.build,
    )
