"""``envctl matrix refresh --archs``: re-read the GPU archs compiled into torch and TF wheels.

The arch record is a member of the wheel (torch: the arch string in libtorch_python.so,
TensorFlow: build_info.py), read with range requests, so this costs a few MB per release and
platform and is opt-in.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

from packaging.version import Version

from envctl.core.matrix_diff import DiffEntry, row_label
from envctl.core.wheel_facts import ARCH_MEMBERS, IndexFile, archs_from_member
from envctl.services.solve.index_reader import IndexReader

_WORKERS = 4


@runtime_checkable
class MemberReader(Protocol):
    """An index that can read one member out of a remote wheel."""

    def read_wheel_member(self, file: IndexFile, suffix: str) -> bytes: ...


def arch_diffs(
    reader: IndexReader, framework: str, file: str, rows: list[tuple[int, dict[str, Any]]], package: str
) -> list[DiffEntry]:
    """Compare each CUDA row's ``archs`` / ``ptx`` with the arch record in its wheels."""
    member = ARCH_MEMBERS.get(framework)
    index = reader.index
    if member is None or not isinstance(index, MemberReader):
        return []
    jobs = [
        (i, row, str(row.get("package", package)), Version(str(v)), str(p))
        for i, row in rows
        if row.get("variant") != "cpu" and "archs" in row
        for p in row.get("platforms", [])
        for v in row.get("versions", [])
    ]

    def read(job: tuple[int, dict[str, Any], str, Version, str]) -> tuple[list[str], list[str]] | None:
        _, _, project, version, platform = job
        wheels = reader.releases(project).get(version, {}).get(platform)
        if not wheels:
            return None  # refresh's platform check already reports a missing wheel
        data = index.read_wheel_member(wheels[0].file, member)
        return archs_from_member(framework, data)

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        found = list(pool.map(read, jobs))
    grouped: dict[tuple[int, str, str, str | None, str | None], list[str]] = {}
    for (i, row, _, version, platform), result in zip(jobs, found, strict=True):
        if result is None:
            continue
        for field, pypi in zip(("archs", "ptx"), result, strict=True):
            committed = [str(a) for a in row.get(field, [])]
            if sorted(committed, key=Version) != sorted(pypi, key=Version):
                key = (i, platform, field, " ".join(committed) or None, " ".join(pypi) or None)
                grouped.setdefault(key, []).append(str(version))
    by_index = dict(rows)
    return [
        DiffEntry(file, i, row_label(by_index[i]), field, committed, pypi, tuple(vs), platform)
        for (i, platform, field, committed, pypi), vs in grouped.items()
    ]
