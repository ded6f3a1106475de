"""``lock -i``: a conda-lock file per variant and the fleet index, with table resolvers (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envctl.adapters.fleet_index import read_index
from envctl.adapters.lockfile import read_lock
from envctl.core.lock import LockOptions
from envctl.core.resolvers import PinnedWheel, PipRequest, Resolvers
from envctl.errors import InputError
from envctl.services.lock.fleet_lock import lock_from_facts
from tests.unit.core.test_fleet import blackwell, h200, pascal
from tests.unit.services.test_lock_service import TableConda


class PinnedPip:
    """Each requirement pinned at its == version, from the index the request pins it to."""

    def resolve(self, request: PipRequest) -> tuple[PinnedWheel, ...]:
        from packaging.requirements import Requirement

        pins = {p.package: p.url for p in request.pins}
        out = []
        for text in request.requirements:
            req = Requirement(text)
            version = next((s.version for s in req.specifier if s.operator == "=="), "1.0")
            filename = f"{req.name}-{version}-py3-none-any.whl"
            index = pins.get(req.name, request.index_url or "https://pypi.test/simple")
            out.append(PinnedWheel(req.name, version, f"https://files.test/{filename}", "0" * 64, (), index))
        return tuple(out)


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "state"))


def profile(tmp_path: Path, torch: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(
        f'[environment]\nname = "fleet"\npython = ">=3.10,<3.14"\n[frameworks]\ntorch = "{torch}"\n'
    )
    return path


def test_two_variants_give_two_locks_and_an_index_that_reads_back(tmp_path: Path) -> None:
    resolvers = Resolvers(pip=PinnedPip(), conda=TableConda())
    facts = {"n1": h200(), "n2": pascal(), "n3": blackwell()}
    out = tmp_path / "conda-lock.yml"
    result = lock_from_facts(profile(tmp_path, ">=2.8"), facts, LockOptions(output=out), resolvers=resolvers)
    assert result.index == str(tmp_path / "conda-lock.fleet.toml") and not out.exists()
    index = read_index(Path(result.index))
    assert [(v.name, sorted(v.nodes)) for v in index] == [
        ("x86_64-r550-sm_61-sm_86+1", ["n1", "n2"]),
        ("x86_64-r570-sm_120", ["n3"]),
    ]
    torch = []
    for v, r in zip(index, result.locks, strict=True):
        lock = read_lock(tmp_path / v.lock)  # validated as conda-lock's format
        assert lock.content_hash == v.content_hash == r.content_hash
        torch.append(next(e.version for e in lock.entries if e.name == "torch"))
    assert torch == ["2.14.1+cu126", "2.11.0+cu128"]
    doc = result.to_dict()
    assert (
        doc["schema"] == "envctl.fleet-lock/1"
        and [v["lock"]["status"] for v in doc["variants"]] == ["written"] * 2
    )


def test_one_stack_writes_the_ordinary_lock_and_no_index(tmp_path: Path) -> None:
    resolvers = Resolvers(pip=PinnedPip(), conda=TableConda())
    out = tmp_path / "conda-lock.yml"
    result = lock_from_facts(
        profile(tmp_path, ">=2.4"),
        {"n1": h200(), "n2": pascal()},
        LockOptions(output=out),
        resolvers=resolvers,
    )
    assert result.index is None and read_lock(out).content_hash == result.locks[0].content_hash
    assert not (tmp_path / "conda-lock.fleet.toml").exists()


def test_a_bad_index_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "conda-lock.fleet.toml"
    bad.write_text('schema = "envctl.fleet-lock/1"\n[[variants]]\nname = "a"\nlock = "x.yml"\n')
    with pytest.raises(InputError, match=r"conda-lock.fleet.toml: variants\[0\]: expected"):
        read_index(bad)
