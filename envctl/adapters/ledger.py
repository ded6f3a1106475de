"""The local ledger: every lock, build, push and rollback, with who, when, what, where, outcome.

A SQLite database at ``$ENVCTL_STATE_DIR/ledger.db`` (default ``~/.local/state/envctl``, or
``$XDG_STATE_HOME/envctl``). Any service records an event with one call::

    ledger.record("lock", lock_hash, [], "ok", {"file": "conda-lock.yml"})
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.core.documents import loads_json
from envctl.core.shown import shown
from envctl.errors import EnvctlError, LedgerError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL NOT NULL,
    who     TEXT NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    targets TEXT NOT NULL,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind, at);
"""


@dataclass(frozen=True)
class Event:
    """One ledger row."""

    id: int
    at: float
    who: str
    kind: str
    subject: str
    targets: tuple[str, ...]
    outcome: str
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape for ``envctl history --json``."""
        return {
            "id": self.id,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
            "who": self.who,
            "kind": self.kind,
            "subject": self.subject,
            "targets": list(self.targets),
            "outcome": self.outcome,
            "details": self.details,
        }


def state_dir() -> Path:
    """Where envctl keeps local state."""
    if explicit := os.environ.get("ENVCTL_STATE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "envctl"


def ledger_path() -> Path:
    """The ledger database file."""
    return state_dir() / "ledger.db"


@contextlib.contextmanager
def _db() -> Iterator[sqlite3.Connection]:
    path = ledger_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30)
    except (OSError, sqlite3.Error) as exc:
        raise LedgerError(
            f"{path}: cannot open the ledger: {exc}",
            hint="set ENVCTL_STATE_DIR to a writable directory",
        ) from exc
    try:
        with conn:
            conn.executescript(_SCHEMA)
            yield conn
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: ledger error: {exc}") from exc
    finally:
        conn.close()


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def record(kind: str, subject: str, targets: Sequence[str], outcome: str, details: dict[str, Any]) -> int:
    """Append one event (kind: lock, build, push, rollback, ...); returns its id."""
    with _db() as conn:
        cur = conn.execute(
            "INSERT INTO events (at, who, kind, subject, targets, outcome, details)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                _who(),
                kind,
                subject,
                json.dumps(list(targets)),
                outcome,
                json.dumps(details, sort_keys=True, default=str),
            ),
        )
        return int(cur.lastrowid or 0)


def events(kind: str | None = None, limit: int | None = None) -> list[Event]:
    """Events, newest first, optionally of one kind."""
    query = "SELECT id, at, who, kind, subject, targets, outcome, details FROM events"
    params: list[Any] = []
    if kind:
        query += " WHERE kind = ?"
        params.append(kind)
    query += " ORDER BY id DESC"
    if limit:
        query += " LIMIT ?"
        params.append(limit)
    with _db() as conn:
        rows = conn.execute(query, params).fetchall()
    return [_event(row) for row in rows]


_YEAR_3000 = 32_503_680_000  # seconds; time.gmtime of a larger one overflows


def _event(row: Sequence[Any]) -> Event:
    """One row as an Event; a row another program damaged (details that are not a JSON object,
    targets that are not a JSON list) is shown as damaged, never breaks history or status."""
    targets = _json(row[5])
    details = _json(row[7])
    if not isinstance(targets, list):
        targets = []
    if not isinstance(details, dict):
        details = {"damaged": f"details are not a JSON object: {shown(row[7])}"}
    at = row[1] if isinstance(row[1], (int, float)) and 0 <= row[1] < _YEAR_3000 else 0.0
    return Event(
        int(row[0]),
        float(at),
        str(row[2]),
        str(row[3]),
        str(row[4]),
        tuple(str(t) for t in targets),
        str(row[6]),
        details,
    )


def _json(value: object) -> Any:
    try:
        return loads_json(value if isinstance(value, (str, bytes)) else "", "ledger row")
    except EnvctlError:
        return None


def desired(env: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """env -> node -> the last digest envctl put there (by push or rollback) and when."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for ev in reversed(events()):
        if ev.kind not in ("push", "rollback"):
            continue
        name = ev.details.get("env")
        if not isinstance(name, str) or (env is not None and name != env):
            continue
        nodes = ev.details.get("nodes")
        for node, res in nodes.items() if isinstance(nodes, dict) else ():
            if not isinstance(res, dict):
                continue
            if res.get("status") in ("ok", "unchanged") and res.get("digest"):
                out.setdefault(name, {})[node] = {
                    "digest": res["digest"],
                    "at": ev.at,
                    "kind": ev.kind,
                }
    return out


@contextlib.contextmanager
def recording(kind: str, subject: str) -> Iterator[dict[str, Any]]:
    """Record the operation inside the block: 'ok' with the details it fills in (``subject`` and
    ``outcome`` keys override), or 'failed' with the error message when an EnvctlError escapes."""
    details: dict[str, Any] = {}
    try:
        yield details
    except EnvctlError as exc:
        record(kind, str(details.pop("subject", subject)), [], "failed", {**details, "error": exc.message})
        raise
    record(kind, str(details.pop("subject", subject)), [], str(details.pop("outcome", "ok")), details)
