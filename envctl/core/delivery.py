"""Pure models of delivering an image to nodes: per-node results, reports, the failure policy.

A push or rollback returns a ``DeliveryReport`` whose ``nodes`` is the ``GroupResult`` every
multi-node command returns: each node maps to ``Delivered`` (it runs the digest) or to
``NotDelivered`` (it failed, or was skipped because of the others). The report carries the
ballot the operation ran under and, when a newer operation on the same environment won, the
claim that beat it (``lost_to``, see ``envctl.core.generation``). A ``push --verify`` report
also holds each switched node's check (``verify``): a node that runs the digest but failed it
counts as failed (``proven``), named with what failed and how to roll it back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from envctl.core.generation import Ballot, Claim
from envctl.core.group import GroupResult, Outcome, node_json
from envctl.core.names import valid_name
from envctl.core.shown import shown
from envctl.core.verification import Verified, summary
from envctl.errors import EnvctlError, InputError

#: the ledger's words for how an event ended (lock and build use ok / failed too)
EVENT_OUTCOME: dict[Outcome, str] = {"all": "ok", "partial": "partial", "none": "failed"}


@dataclass(frozen=True)
class Delivered:
    """One node runs the digest: ``ok`` (this run changed it) or ``unchanged`` (it already did,
    verified). ``repaired`` says what this run found wrong with an environment that was already
    at the digest (a missing symlink, an edited tree), and fixed."""

    status: Literal["ok", "unchanged"]
    digest: str | None
    previous: str | None = None
    bytes_sent: int = 0
    blobs_sent: int = 0
    resumed_from: int = 0
    seconds: float = 0.0
    generation: int | None = None
    repaired: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape of a node entry (``ok`` is added by the group)."""
        return {
            "status": self.status,
            "digest": self.digest,
            "previous": self.previous,
            "bytes_sent": self.bytes_sent,
            "blobs_sent": self.blobs_sent,
            "resumed_from": self.resumed_from,
            "seconds": round(self.seconds, 3),
            "generation": self.generation,
            "repaired": self.repaired,
        }


class NotDelivered(EnvctlError):
    """One node does not run the digest: it ``failed`` there, or was ``skipped`` for the others.

    A per-node error (an entry of the report, never raised to the user); ``details`` keeps what
    the node got before it stopped, so a re-run's resume can be told from a restart.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        status: Literal["failed", "skipped"] = "failed",
        digest: str | None = None,
        bytes_sent: int = 0,
        blobs_sent: int = 0,
        resumed_from: int = 0,
        seconds: float = 0.0,
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.digest = digest
        self.bytes_sent, self.blobs_sent, self.resumed_from = bytes_sent, blobs_sent, resumed_from
        self.seconds = seconds
        # the node entry's fields besides ``ok``, ``error`` and ``hint``
        self.details = {
            "status": status,
            "digest": digest,
            "previous": None,
            "bytes_sent": bytes_sent,
            "blobs_sent": blobs_sent,
            "resumed_from": resumed_from,
            "seconds": round(seconds, 3),
            "generation": None,
            "repaired": None,
        }

    @classmethod
    def of(cls, error: EnvctlError, digest: str | None, **progress: Any) -> NotDelivered:
        """``error`` as a failed node entry (itself if it already is one)."""
        if isinstance(error, NotDelivered):
            return error
        failed = cls(error.message, error.hint, digest=digest, **progress)
        failed.__cause__ = error
        return failed


@dataclass(frozen=True)
class DeliveryReport:
    """The per-node map of one push or rollback, and what it adds up to."""

    operation: str
    env: str
    digest: str | None
    nodes: GroupResult[Delivered] = field(default_factory=lambda: GroupResult({}))
    timings: Mapping[str, float] = field(default_factory=dict)  # phase -> seconds
    ballot: Ballot | None = None  # what it ran under (None: it never got as far as claiming)
    lost_to: Claim | None = None  # the newer operation on the environment that won
    preflight: Mapping[str, Any] | None = None  # what push's preflight held or skipped (push only)
    fanout: Mapping[str, Any] | None = None  # how blobs reached the nodes: mode and its facts (push only)
    verify: GroupResult[Verified] | None = None  # push --verify: each switched node's smoke check

    @property
    def proven(self) -> GroupResult[Delivered]:
        """``nodes``, with a node that runs the digest but failed its check as that failure."""
        if self.verify is None:
            return self.nodes
        out: dict[str, Delivered | EnvctlError] = dict(self.nodes.items())
        for name, check in self.verify.items():
            if isinstance(check, EnvctlError) and isinstance(out.get(name), Delivered):
                out[name] = check
        return GroupResult(out)

    @property
    def outcome(self) -> Outcome:
        """``all`` nodes run the digest (and passed its check, when verified), ``partial``ly, or
        ``none`` does."""
        return self.proven.outcome

    @property
    def exit_code(self) -> int:
        """0 when every node succeeded, 1 otherwise."""
        return self.proven.exit_code

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape for ``--json`` (``envctl.push/1`` or ``envctl.rollback/1``)."""
        sent = sum(v.bytes_sent for v in self.nodes.values() if isinstance(v, (Delivered, NotDelivered)))
        extra: dict[str, Any] = {} if self.preflight is None else {"preflight": dict(self.preflight)}
        if self.fanout is not None:
            extra["fanout"] = dict(self.fanout)
        doc = self.nodes.as_json(
            self.operation,
            operation=self.operation,
            env=self.env,
            digest=self.digest,
            bytes_sent=sent,
            timings={k: round(v, 3) for k, v in self.timings.items()},
            generation=self.ballot.generation if self.ballot else None,
            token=self.ballot.token if self.ballot else None,
            lost_to=self.lost_to.as_json() if self.lost_to else None,
            **extra,
        )
        doc.update(ok=self.exit_code == 0, outcome=self.outcome, verify=None)
        if self.verify is not None:
            doc["verify"] = {**summary(self.verify), "not_run": sorted(set(self.nodes) - set(self.verify))}
            for name, entry in doc["nodes"].items():
                check = self.verify.get(name)
                entry["verify"] = None if check is None else node_json(check)
                if isinstance(check, EnvctlError) and entry["ok"]:
                    entry.update(ok=False, error=check.message, hint=check.hint)
        return doc


def parse_max_fail(text: str | None, total: int) -> int | None:
    """``N`` or ``P%`` of ``total`` nodes may fail before activation stops; None: no limit."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)(%?)\s*", text)
    if not m:
        raise InputError(f"--max-fail: expected N or P%, got {shown(text)}")
    value = int(m.group(1))
    if m.group(2):
        if value > 100:
            raise InputError(f"--max-fail: {shown(text)} is over 100%")
        return value * total // 100
    return value


def default_env_name(ref_name: str | None, directory: str) -> str:
    """``registry/team/torch-train:v3`` -> ``torch-train``; else the layout directory's name."""
    if ref_name:
        return ref_name.split(":")[0].rsplit("/", 1)[-1].lower()
    return directory.lower()


def check_env_name(name: str, where: str = "ENV") -> str:
    """Environment names become paths and image tags: lower-case, no slashes (``core.names``)."""
    return valid_name("env", name, where)
