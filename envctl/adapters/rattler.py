"""py-rattler at the edge: solve conda match specs for one target platform, fully offline-capable.

Virtual packages (``__cuda``, ``__glibc``, ``__linux``, ``__archspec``) come from the request,
never from the machine running the lock: locking for a GPU cluster on a laptop must not see the
laptop's driver.
"""

from __future__ import annotations

import asyncio
from typing import Any

from envctl.core.resolvers import CondaRequest, PinnedCondaPackage
from envctl.errors import InputError, LockError, ResolveError


class RattlerSolver:
    """The conda side of a lock, solved by rattler (a ``core.resolvers.CondaSolver``)."""

    def solve(self, request: CondaRequest) -> tuple[PinnedCondaPackage, ...]:
        """Every pinned package of ``request``, sorted by name."""
        return solve(request)


def solve(request: CondaRequest) -> tuple[PinnedCondaPackage, ...]:
    """Solve ``request`` with rattler; a failure is one LockError naming the specs."""
    if not request.specs:
        return ()
    if request.offline:
        remote = [c for c in request.channels if not c.startswith("file://")]
        if remote:
            raise InputError(
                f"--offline needs local channels, got {', '.join(remote)}",
                hint="pass file:// channels with --channel",
            )
    try:
        import rattler
        import rattler.exceptions as rexc
    except ImportError as exc:  # pragma: no cover - py-rattler is a hard dependency
        raise LockError("py-rattler is not installed", hint="pip install py-rattler") from exc
    virtual = [_virtual_package(name, value) for name, value in sorted(request.virtual_packages.items())]
    try:
        records = asyncio.run(
            rattler.solve(
                list(request.channels),
                list(request.specs),
                platforms=[request.platform, "noarch"],  # type: ignore[list-item]
                virtual_packages=virtual,
                exclude_newer=request.exclude_newer,
                timestamp_policy="allow-missing",
            )
        )
    except rexc.SolverError as exc:
        raise ResolveError(
            f"conda specs unsatisfiable for {request.platform}: {_one_line(exc)}",
            hint="check the conda specs and the target's virtual packages",
        ) from exc
    except (rexc.GatewayError, rexc.FetchRepoDataError) as exc:
        raise ResolveError(
            f"cannot read conda channels {', '.join(request.channels)}: {_one_line(exc)}",
            hint="check the channel URL (file:// for local channels)",
        ) from exc
    except Exception as exc:  # rattler raises its own exception types, not a common base
        raise ResolveError(f"conda solve failed for {request.platform}: {_one_line(exc)}") from exc
    return tuple(sorted((_pinned(record) for record in records), key=lambda p: p.name))


def _virtual_package(name: str, value: str) -> Any:
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    # __archspec carries the microarchitecture in its build string, version "1".
    if name == "__archspec":
        return GenericVirtualPackage(PackageName(name), Version("1"), BuildString(value))
    version, _, build = value.partition("=")
    return GenericVirtualPackage(PackageName(name), Version(version), BuildString(build or "0"))


def _pinned(record: Any) -> PinnedCondaPackage:
    return PinnedCondaPackage(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        subdir=record.subdir,
        url=str(record.url),
        md5=record.md5.hex() if record.md5 else "",
        sha256=record.sha256.hex() if record.sha256 else None,
        depends=tuple(str(d) for d in record.depends),
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:400]
