"""The SQLite ledger: record, list, and what it says each node should run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.adapters import ledger
from envctl.cli import cli
from envctl.errors import LedgerError


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "st"))


def _push(env: str, digest: str, statuses: dict[str, str]) -> None:
    nodes = {n: {"status": s, "digest": digest} for n, s in statuses.items()}
    ledger.record("push", digest, sorted(statuses), "ok", {"env": env, "nodes": nodes})


def test_record_and_list_newest_first(tmp_path: Path) -> None:
    first = ledger.record("lock", "sha256:aa", [], "ok", {"file": "conda-lock.yml"})
    second = ledger.record("build", "sha256:bb", [], "ok", {})
    assert second > first
    events = ledger.events()
    assert [e.kind for e in events] == ["build", "lock"]
    assert events[1].details == {"file": "conda-lock.yml"} and "@" in events[1].who
    assert [e.kind for e in ledger.events("lock")] == ["lock"]
    assert ledger.ledger_path() == tmp_path / "st" / "ledger.db"


def test_desired_follows_successful_pushes_and_rollbacks() -> None:
    _push("demo", "sha256:v1", {"n1": "ok", "n2": "ok"})
    _push("demo", "sha256:v2", {"n1": "ok", "n2": "failed"})
    _push("other", "sha256:o1", {"n1": "ok"})
    ledger.record(
        "rollback",
        "sha256:v1",
        ["n1"],
        "ok",
        {"env": "demo", "nodes": {"n1": {"status": "ok", "digest": "sha256:v1"}}},
    )
    want = ledger.desired("demo")
    assert {n: d["digest"] for n, d in want["demo"].items()} == {
        "n1": "sha256:v1",
        "n2": "sha256:v1",
    }
    assert set(ledger.desired()) == {"demo", "other"}


def test_unwritable_state_dir_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(blocker / "sub"))
    with pytest.raises(LedgerError, match="cannot open the ledger") as err:
        ledger.record("lock", "x", [], "ok", {})
    assert err.value.exit_code == 1


def test_history_json_has_a_stable_shape() -> None:
    _push("demo", "sha256:v1", {"n1": "ok"})
    out = CliRunner().invoke(cli, ["history", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["schema"] == "envctl.history/1" and doc["ok"] is True
    (event,) = doc["events"]
    assert set(event) == {"id", "at", "who", "kind", "subject", "targets", "outcome", "details"}
    assert event["targets"] == ["n1"] and event["kind"] == "push"
    table = CliRunner().invoke(cli, ["history"])
    assert table.exit_code == 0 and "push" in table.output
