"""What the pushes of one operation share: the failure budget and the moments they decide together.

A plain push is one party; a fleet push (``fleet_push``) runs one push per variant at once, and
they share one ``Gate``: ``--max-fail`` counts every variant's failed nodes, and ``--atomic``
holds for all of them. Each push meets the others three times (``wait``): after connecting (so
every unreachable or refused node is counted before anyone claims), after staging (so the
activation decision sees the whole fleet), and after switching and verifying (``settle``: did any
variant fail, so that ``--atomic`` switches every variant back).
"""

from __future__ import annotations

import threading


class Budget:
    """How many nodes failed so far, against ``--max-fail`` (shared by the staging threads)."""

    def __init__(self, max_fail: int | None, failures: int = 0) -> None:
        self.max_fail, self.failures = max_fail, failures
        self._lock = threading.Lock()

    def fail(self, count: int = 1) -> None:
        """``count`` more nodes failed."""
        with self._lock:
            self.failures += count

    def exceeded(self) -> bool:
        """More nodes failed than ``--max-fail`` allows."""
        with self._lock:
            return self.max_fail is not None and self.failures > self.max_fail


class Gate:
    """The budget and the meeting points of ``parties`` pushes (1: a plain push, never waits)."""

    def __init__(self, parties: int, max_fail: int | None) -> None:
        self.parties = parties
        self.budget = Budget(max_fail)
        self._barrier = threading.Barrier(parties)
        self._lock = threading.Lock()
        self._failed = False

    def wait(self) -> None:
        """Until every push got here (a push that died of a bug breaks the barrier: see ``abort``)."""
        self._barrier.wait()

    def settle(self, failed: bool) -> bool:
        """Say whether this push failed anywhere after staging; returns whether any push did."""
        with self._lock:
            self._failed = self._failed or failed
        self._barrier.wait()
        with self._lock:
            return self._failed

    def abort(self) -> None:
        """A push stopped on a bug: the others must not wait for it forever."""
        self._barrier.abort()
