"""The facts cache: each node's last raw ``facts`` document, with when it was read.

One JSON file per node under ``$ENVCTL_STATE_DIR/facts/`` (the ledger's state directory), named
by the node and its address so that two inventories' ``n1`` do not share an entry. A damaged
entry reads as absent: the facts are read again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from envctl.adapters.files import write_atomic
from envctl.adapters.ledger import state_dir
from envctl.errors import LedgerError

MAX_ENTRY = 8 << 20  # bytes: a facts document is ~100 KB


def entry_path(name: str, address: str) -> Path:
    """Where ``name``'s facts are kept (safe file name + a hash of name and address)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64]
    tag = hashlib.sha256(f"{name}\0{address}".encode()).hexdigest()[:12]
    return state_dir() / "facts" / f"{safe}-{tag}.json"


def load(name: str, address: str) -> dict[str, Any] | None:
    """The cached entry ``{"at", "asked_at", "answered_at", "raw"}``, or None."""
    path = entry_path(name, address)
    with contextlib.suppress(OSError, ValueError):
        if path.stat().st_size <= MAX_ENTRY:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if (
                isinstance(doc, dict)
                and isinstance(doc.get("raw"), dict)
                and isinstance(doc.get("at"), float)
            ):
                return doc
    return None


def store(name: str, address: str, entry: dict[str, Any]) -> None:
    """Replace ``name``'s entry."""
    path = entry_path(name, address)
    try:
        write_atomic(path, json.dumps(entry, sort_keys=True))
    except OSError as exc:
        raise LedgerError(
            f"{path}: cannot write the facts cache: {exc.strerror}",
            hint="set ENVCTL_STATE_DIR to a writable directory",
        ) from exc
