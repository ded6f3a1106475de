"""Pure models of proving an environment by running it on nodes (``envctl verify``, ``push --verify``).

The node agent's ``smoke`` command runs the image's import check inside the node's runtime and
answers with what each package's import gave (``envctl.node.smoke``); ``judge`` reads that
answer (from another agent version or a hostile node: every field is type-checked) into
``Verified`` (every package imported, every kernel asked for ran) or ``NotVerified`` (a per-node
error naming what failed). ``VerifyReport`` is the per-node map of one ``envctl verify``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envctl.core.group import GroupResult, Outcome
from envctl.core.shown import shown
from envctl.errors import EnvctlError

MAX_LISTED = 5  # failures a message names before "and N more"
FRAMEWORKS = ("torch", "jax", "tensorflow")


@dataclass(frozen=True)
class Verified:
    """One node ran its current environment: every package imported (and every kernel ran)."""

    digest: str
    runtime: str
    python: str
    packages: int
    kernels: Mapping[str, str] = field(default_factory=dict)  # framework -> "ok: ..."
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape of a node entry (``ok`` is added by the group)."""
        return {
            "passed": True,
            "digest": self.digest,
            "runtime": self.runtime,
            "python": self.python,
            "packages": self.packages,
            "kernels": dict(self.kernels),
            "failed": [],
            "seconds": round(self.seconds, 3),
        }


class NotVerified(EnvctlError):
    """One node's environment did not pass (``failed`` says what), or could not be run at all."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        digest: str | None = None,
        runtime: str | None = None,
        python: str | None = None,
        packages: int = 0,
        kernels: Mapping[str, str] | None = None,
        failed: tuple[str, ...] = (),
        seconds: float = 0.0,
    ) -> None:
        super().__init__(message, hint)
        self.failed, self.seconds = failed, seconds
        self.details = {
            "passed": False,
            "digest": digest,
            "runtime": runtime,
            "python": python,
            "packages": packages,
            "kernels": dict(kernels or {}),
            "failed": list(failed),
            "seconds": round(seconds, 3),
        }

    @classmethod
    def of(cls, error: EnvctlError, seconds: float = 0.0) -> NotVerified:
        """``error`` (unreachable, no such environment, ...) as a node that was not verified."""
        if isinstance(error, NotVerified):
            return error
        out = cls(f"verify: {error.message}", error.hint, seconds=seconds)
        out.__cause__ = error
        return out


def rollback_hint(env: str, node: str) -> str:
    """What to do about a node that runs an environment that failed its check."""
    return (
        f"{node} runs it now: `envctl rollback {env} -i INVENTORY --limit {node}` puts back the "
        "version before it; or fix the lock, build and push again"
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _package_failures(packages: list[dict[str, Any]]) -> list[str]:
    out = []
    for entry in packages:
        if entry.get("ok") is not False:
            continue
        modules = _dict(entry.get("modules"))
        errors = [f"{m}: {v[len('error: ') :]}" for m, v in modules.items() if _text(v).startswith("error: ")]
        why = errors[0] if errors else "none of its modules is installed"
        out.append(f"{shown(_text(entry.get('name'), '?'), 60)[1:-1]} ({shown(why, 300)[1:-1]})")
    return out


def judge(answer: Mapping[str, Any], env: str, node: str, seconds: float) -> Verified | NotVerified:
    """The agent's ``smoke`` answer as a verdict: a package that failed to import, a kernel that
    failed (or a framework present that no kernel ran for, when kernels were asked) fails it."""
    result = _dict(answer.get("result"))
    digest, runtime = _text(answer.get("digest")), _text(answer.get("runtime"))
    raw = _list(result.get("packages"))
    packages = [p for p in raw if isinstance(p, dict)]
    raw_kernels = _dict(result.get("kernels"))
    kernels = {str(k): _text(v, "error: not a string") for k, v in raw_kernels.items()}
    python = _text(result.get("python"), "?")
    failed = _package_failures(packages)
    failed += [
        f"{name} kernel ({shown(v, 300)[1:-1]})" for name, v in kernels.items() if not v.startswith("ok")
    ]
    if answer.get("kernels_asked") is True:
        present = {_text(p.get("name")).lower() for p in packages}
        failed += [f"{fw} kernel (not run)" for fw in FRAMEWORKS if fw in present and fw not in kernels]
    if len(packages) != len(raw):
        failed.append(f"{len(raw) - len(packages)} malformed package entries in the node's answer")
    if not packages:
        failed.append("no packages found in the environment's site-packages")
    if not digest.startswith("sha256:"):
        failed.append("the node's answer names no digest")
    if not failed:
        return Verified(digest, runtime, python, len(packages), kernels, seconds)
    listed = ", ".join(failed[:MAX_LISTED]) + (
        f" and {len(failed) - MAX_LISTED} more" if len(failed) > MAX_LISTED else ""
    )
    return NotVerified(
        f"verify failed: {listed}",
        rollback_hint(env, node),
        digest=digest or None,
        runtime=runtime or None,
        python=python,
        packages=len(packages),
        kernels=kernels,
        failed=tuple(failed),
        seconds=seconds,
    )


@dataclass(frozen=True)
class VerifyReport:
    """The per-node map of one ``envctl verify``."""

    env: str
    nodes: GroupResult[Verified]

    @property
    def outcome(self) -> Outcome:
        """``all`` nodes passed, ``partial``ly, or ``none`` did."""
        return self.nodes.outcome

    @property
    def exit_code(self) -> int:
        """0 when every node passed, 1 otherwise."""
        return self.nodes.exit_code

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape (``envctl.verify/1``)."""
        return self.nodes.as_json(
            "verify",
            env=self.env,
            passed=sorted(self.nodes.succeeded),
            failed=sorted(self.nodes.failed),
        )


def summary(verified: GroupResult[Verified]) -> dict[str, Any]:
    """The ``verify`` field of a push report: which nodes passed, which did not."""
    return {
        "outcome": verified.outcome,
        "passed": sorted(verified.succeeded),
        "failed": sorted(verified.failed),
    }
