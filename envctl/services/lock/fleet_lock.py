"""``envctl lock PROFILE -i INVENTORY``: one conda-lock file per variant, and an index of them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from envctl.adapters.fleet_index import IndexedVariant, index_path, variant_path, write_index
from envctl.core.fleet_plan import FleetPlan
from envctl.core.lock import LockOptions
from envctl.core.node_facts import NodeFacts
from envctl.core.resolvers import Resolvers
from envctl.services.lock.lock import LockResult, lock_solution


@dataclass(frozen=True)
class FleetLockResult:
    """Each variant's lock result, and where the index was written (None: one stack, no index)."""

    fleet: FleetPlan
    locks: tuple[LockResult, ...]
    index: str | None

    def to_dict(self) -> dict[str, Any]:
        """Stable JSON shape (``envctl.fleet-lock/1``)."""
        return {
            "schema": "envctl.fleet-lock/1",
            "profile": self.fleet.profile,
            "index": self.index,
            "variants": [
                {"name": v.name, "nodes": list(v.nodes), "lock": r.to_dict()}
                for v, r in zip(self.fleet.variants, self.locks, strict=True)
            ],
        }


def lock_fleet(
    fleet: FleetPlan,
    options: LockOptions,
    *,
    profile_hash: str,
    matrix_hash: str,
    resolvers: Resolvers | None = None,
) -> FleetLockResult:
    """Lock each variant; one variant writes ``options.output`` alone, several write
    ``NAME.VARIANT.yml`` each and the index ``NAME.fleet.toml`` beside them."""
    if fleet.single:
        result = lock_solution(
            fleet.variants[0].solution,
            options,
            profile_hash=profile_hash,
            matrix_hash=matrix_hash,
            resolvers=resolvers,
        )
        return FleetLockResult(fleet, (result,), None)
    results = []
    for v in fleet.variants:
        # the variant's nodes are part of what was locked: another split is another input
        tagged = hashlib.sha256(f"{profile_hash}|{v.name}|{','.join(v.nodes)}".encode()).hexdigest()
        results.append(
            lock_solution(
                v.solution,
                replace(options, output=variant_path(options.output, v.name)),
                profile_hash=tagged,
                matrix_hash=matrix_hash,
                resolvers=resolvers,
            )
        )
    index = index_path(options.output)
    if not options.check:
        write_index(
            index,
            fleet.profile,
            tuple(
                IndexedVariant(v.name, r.path.name, r.content_hash, v.nodes)
                for v, r in zip(fleet.variants, results, strict=True)
            ),
        )
    return FleetLockResult(fleet, tuple(results), str(index))


def lock_from_facts(
    profile: Path,
    facts: dict[str, NodeFacts],
    options: LockOptions,
    *,
    matrix_dir: Path | None = None,
    single: bool = False,
    resolvers: Resolvers | None = None,
) -> FleetLockResult:
    """Solve ``profile`` for nodes with these facts (``solve -i``) and lock every variant."""
    from envctl.adapters import ledger
    from envctl.adapters.matrix_files import load_matrix
    from envctl.adapters.profile_file import load_profile
    from envctl.core.fleet_plan import plan

    with ledger.recording("lock", str(profile)) as entry:
        matrix = load_matrix(matrix_dir)
        loaded, digest = load_profile(profile)
        fleet = plan(loaded, facts, matrix, single=single)
        result = lock_fleet(
            fleet, options, profile_hash=digest, matrix_hash=matrix.version, resolvers=resolvers
        )
        entry.update(
            subject=",".join(r.content_hash for r in result.locks),
            outcome=",".join(r.status for r in result.locks),
            file=result.index or str(result.locks[0].path),
            profile=str(profile),
        )
        return result
