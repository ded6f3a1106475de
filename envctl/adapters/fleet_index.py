"""The fleet lock index (``conda-lock.fleet.toml``): which lock file serves which nodes.

One writer, one reader. Each variant's lock is an ordinary conda-lock file that ``build`` and
``push`` take as they are; the index only maps variants to their lock and their nodes, so
conda-lock's format stays untouched.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from envctl.adapters.files import write_atomic
from envctl.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

INDEX_SCHEMA = "envctl.fleet-lock/1"


@dataclass(frozen=True)
class IndexedVariant:
    """One variant: its name, its lock file (relative to the index) and content hash, its nodes."""

    name: str
    lock: str
    content_hash: str
    nodes: tuple[str, ...]


def index_path(output: Path) -> Path:
    """``conda-lock.yml`` -> ``conda-lock.fleet.toml`` beside it."""
    return output.with_name(f"{output.name.split('.', 1)[0]}.fleet.toml")


def variant_path(output: Path, variant: str) -> Path:
    """``conda-lock.yml`` -> ``conda-lock.VARIANT.yml`` beside it."""
    stem, _, suffix = output.name.partition(".")
    return output.with_name(f"{stem}.{variant}.{suffix or 'yml'}")


def variant_layout(index: Path, variant: IndexedVariant, output: Path | None = None) -> Path:
    """Where ``build --fleet`` writes a variant's image: ``OUTPUT/VARIANT`` with ``-o OUTPUT``,
    else beside its lock (``conda-lock.VARIANT.yml`` -> ``conda-lock.VARIANT.oci``), which is
    where ``push --fleet`` looks for it when no ``--variant`` names it."""
    if output is not None:
        return output / variant.name
    lock = index.parent / variant.lock
    return lock.with_name(lock.name.removesuffix(".yml").removesuffix(".yaml") + ".oci")


def write_index(path: Path, profile: str, variants: tuple[IndexedVariant, ...]) -> None:
    """Write the index (atomically)."""
    doc = {
        "schema": INDEX_SCHEMA,
        "profile": profile,
        "variants": [
            {"name": v.name, "lock": v.lock, "content_hash": v.content_hash, "nodes": list(v.nodes)}
            for v in variants
        ],
    }
    write_atomic(path, tomli_w.dumps(doc))


def read_index(path: Path) -> tuple[IndexedVariant, ...]:
    """The index's variants; a bad file is an InputError naming file and key."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: cannot read the fleet lock index: {exc}") from None
    if doc.get("schema") != INDEX_SCHEMA:
        raise InputError(f"{path}: schema: expected {INDEX_SCHEMA!r}", hint="write it with envctl lock -i")
    out = []
    for i, v in enumerate(doc.get("variants") or ()):
        ok = isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("name", "lock", "content_hash"))
        nodes = v.get("nodes") if isinstance(v, dict) else None
        if not ok or not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise InputError(f"{path}: variants[{i}]: expected name, lock, content_hash and a list of nodes")
        out.append(IndexedVariant(v["name"], v["lock"], v["content_hash"], tuple(nodes)))
    if not out:
        raise InputError(f"{path}: variants: none listed")
    return tuple(out)
