"""The node's side of the generation protocol, through the agent's command line: claims only go
up, every env-changing step runs under the promised ballot, bad input is refused by name."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from envctl.node import agent

TOKEN_A = "1700000000000000000-" + "a" * 16
TOKEN_B = "1700000000000000000-" + "b" * 16
ZERO = "sha256:" + "0" * 64


def call(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
    stdin: str = "",
) -> tuple[int, dict[str, Any]]:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = agent.main(["--store", str(tmp_path / "store"), "--prefix-root", str(tmp_path / "envs"), *argv])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def request(**override: Any) -> str:
    return json.dumps({"op": "push", "digest": ZERO, "by": "me@here", "members": ["n1", "n2"], **override})


@pytest.fixture
def agent_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    return lambda *argv, stdin="": call(tmp_path, monkeypatch, capsys, *argv, stdin=stdin)


def claim(agent_call: Any, generation: int, token: str, **override: Any) -> dict[str, Any]:
    code, doc = agent_call(
        "claim", "demo", "--generation", str(generation), "--token", token, stdin=request(**override)
    )
    assert code == 0, doc
    return doc


def test_claims_only_go_up(agent_call: Any) -> None:
    assert agent_call("epoch", "demo")[1]["promise"] is None
    assert claim(agent_call, 2, TOKEN_A)["granted"] is True
    assert claim(agent_call, 2, TOKEN_B)["granted"] is True  # same generation, later token
    refused = claim(agent_call, 2, TOKEN_A)
    assert refused["granted"] is False and refused["holder"]["token"] == TOKEN_B
    assert refused["holder"]["members_count"] == 2 and "members" not in refused["holder"]
    assert claim(agent_call, 1, TOKEN_B)["granted"] is False
    assert claim(agent_call, 3, TOKEN_A)["granted"] is True
    promise = agent_call("epoch", "demo")[1]["promise"]
    assert (promise["generation"], promise["token"], promise["by"]) == (3, TOKEN_A, "me@here")


def test_steps_run_only_under_the_promised_ballot(agent_call: Any) -> None:
    claim(agent_call, 1, TOKEN_A)
    claim(agent_call, 2, TOKEN_B)
    for argv in (
        ("switch", "demo", ZERO),
        ("prepare", "demo", ZERO),
        ("restore", "demo"),
        ("rollback", "demo", "--to", ZERO),
    ):
        code, doc = agent_call(*argv, "--generation", "1", "--token", TOKEN_A)
        assert code == 3 and doc["kind"] == "superseded", argv
        assert doc["holder"]["token"] == TOKEN_B and "generation 2" in doc["error"]
    # under the promised ballot the step gets as far as its own checks
    code, doc = agent_call("switch", "demo", ZERO, "--generation", "2", "--token", TOKEN_B)
    assert doc["kind"] == "missing"


@pytest.mark.parametrize(
    ("argv", "stdin", "expected"),
    [
        (("claim", "demo", "--generation", "0", "--token", TOKEN_A), request(), "not a generation"),
        (("claim", "demo", "--generation", "1e3", "--token", TOKEN_A), request(), "not a generation"),
        (("claim", "demo", "--generation", "1", "--token", TOKEN_A + "\n"), request(), "not a ballot token"),
        (("claim", "demo", "--generation", "1", "--token", "x"), request(), "not a ballot token"),
        (("claim", "demo", "--generation", "1", "--token", TOKEN_A), "nope", "not valid JSON"),
        (("claim", "demo", "--generation", "1", "--token", TOKEN_A), "[1]", "not a JSON object"),
        (("claim", "demo", "--generation", "1", "--token", TOKEN_A), request(op="delete"), "op must be"),
        (("claim", "demo", "--generation", "1", "--token", TOKEN_A), request(members="n1"), "list of node"),
        (("claim", "demo", "--generation", "1", "--token", TOKEN_A), request(members=["a\nb"]), "printable"),
        (("claim", "demo", "--generation", "1", "--token", TOKEN_A), request(by="x" * 300), "by must"),
        (("claim", "demo", "--generation", "1", "--token", TOKEN_A), request(digest="../x"), "sha256"),
        (("claim", "demo", "--generation", "1", "--token", TOKEN_A), " " * (17 << 20), "more than"),
    ],
)
def test_bad_input_is_refused_by_name(
    agent_call: Any, argv: tuple[str, ...], stdin: str, expected: str
) -> None:
    code, doc = agent_call(*argv, stdin=stdin)
    assert code == 3 and doc["kind"] == "input" and expected in doc["error"], doc
    assert agent_call("epoch", "demo")[1]["promise"] is None  # nothing was promised


def test_a_malformed_epoch_record_fails_only_its_env(tmp_path: Path, agent_call: Any) -> None:
    claim(agent_call, 1, TOKEN_A)
    (tmp_path / "store" / "epochs" / "demo.json").write_text("{broken")
    code, doc = agent_call("epoch", "demo")
    assert code == 3 and doc["kind"] == "state" and "demo.json" in doc["error"]
    code, doc = agent_call("claim", "other", "--generation", "1", "--token", TOKEN_A, stdin=request())
    assert code == 0 and doc["granted"] is True
    assert agent_call("gc", "--max-age", "0")[0] == 0
