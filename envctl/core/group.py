"""Per-node outcomes of a multi-node operation (fabric's GroupResult idea).

Pure. A ``GroupResult`` maps every node to its value or to the EnvctlError that stopped it, in
the order the nodes were given; ``outcome`` says whether all, some or none succeeded, which is
what a command's exit status reports (0 for all, 1 otherwise). Every multi-node command (push,
status, gc, rollback, exec, inventory check) returns one, and prints it with ``as_json``:

    {"schema": "envctl.KIND/N", "ok": bool, "outcome": "all|partial|none", ...,
     "nodes": {NODE: {"ok": true, ...value} | {"ok": false, "error": str, "hint": str|null, ...}}}

A value gives its fields with ``as_json()``; an error may carry ``details`` (a dict) with what is
known of the node anyway (bytes sent before a link broke, a command's output).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, Literal, Protocol, TypeVar

from envctl.errors import EnvctlError

T = TypeVar("T")
Outcome = Literal["all", "partial", "none"]


class NodeValue(Protocol):
    """What a node's successful result must offer to be printed as JSON."""

    def as_json(self) -> dict[str, Any]:
        """The node's fields (without ``ok``)."""
        ...


V = TypeVar("V", bound=NodeValue)


class GroupResult(Mapping[str, "T | EnvctlError"], Generic[T]):
    """node -> result or error, with ``succeeded`` / ``failed`` views."""

    def __init__(self, items: Mapping[str, T | EnvctlError]) -> None:
        self._items = dict(items)

    def __getitem__(self, node: str) -> T | EnvctlError:
        return self._items[node]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"GroupResult({self._items!r})"

    @property
    def succeeded(self) -> dict[str, T]:
        """Nodes whose operation returned a value."""
        return {n: v for n, v in self._items.items() if not isinstance(v, EnvctlError)}

    @property
    def failed(self) -> dict[str, EnvctlError]:
        """Nodes whose operation raised an envctl error."""
        return {n: v for n, v in self._items.items() if isinstance(v, EnvctlError)}

    @property
    def outcome(self) -> Outcome:
        """``all``, ``partial`` or ``none`` (an empty group counts as ``all``)."""
        if not self.failed:
            return "all"
        return "none" if not self.succeeded else "partial"

    @property
    def ok(self) -> bool:
        """Every node succeeded."""
        return self.outcome == "all"

    @property
    def exit_code(self) -> int:
        """0 when every node succeeded, 1 otherwise (the request could not be met everywhere)."""
        return 0 if self.ok else 1

    def as_json(self: GroupResult[V], kind: str, version: int = 1, **fields: Any) -> dict[str, Any]:
        """The JSON document ``envctl.KIND/VERSION``: ``fields`` plus one entry per node."""
        return {
            "schema": f"envctl.{kind}/{version}",
            "ok": self.ok,
            "outcome": self.outcome,
            **fields,
            "nodes": {name: node_json(value) for name, value in self._items.items()},
        }


def node_json(value: NodeValue | EnvctlError) -> dict[str, Any]:
    """One node's entry: ``{"ok": true, ...}`` or ``{"ok": false, "error", "hint", ...}``."""
    if isinstance(value, EnvctlError):
        return {**value.details, "ok": False, "error": value.message, "hint": value.hint}
    return {**value.as_json(), "ok": True}
