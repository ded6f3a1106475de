"""Reading the agent's smoke answer into verdicts, and how checks add up in push and verify reports."""

from __future__ import annotations

from typing import Any

import pytest

from envctl.core.delivery import Delivered, DeliveryReport, NotDelivered
from envctl.core.group import GroupResult
from envctl.core.verification import NotVerified, Verified, VerifyReport, judge
from envctl.errors import TransportError

D = "sha256:" + "d" * 64


def answer(packages: list[Any], kernels: dict[str, Any] | None = None, asked: bool = False) -> dict[str, Any]:
    return {
        "digest": D,
        "runtime": "prefix",
        "kernels_asked": asked,
        "result": {"python": "3.11.2", "packages": packages, "gpus": {}, "kernels": kernels or {}},
    }


def pkg(name: str, ok: bool = True, **modules: str) -> dict[str, Any]:
    return {"name": name, "version": "1", "ok": ok, "modules": modules or {name: "1"}}


def test_every_package_imported_is_verified() -> None:
    got = judge(answer([pkg("numpy"), pkg("six")]), "e", "n1", 1.5)
    assert got == Verified(D, "prefix", "3.11.2", 2, {}, 1.5)
    assert got.as_json()["passed"] is True and got.as_json()["failed"] == []


def test_a_package_that_fails_to_import_is_named_with_its_error_and_the_way_back() -> None:
    broken = pkg("brokenpkg", False, brokenpkg="error: ImportError: broken on purpose")
    got = judge(answer([pkg("numpy"), broken]), "demo", "n2", 0.7)
    assert isinstance(got, NotVerified)
    assert got.message == "verify failed: brokenpkg (brokenpkg: ImportError: broken on purpose)"
    assert got.hint is not None and "`envctl rollback demo -i INVENTORY --limit n2`" in got.hint
    assert got.details["failed"] == ["brokenpkg (brokenpkg: ImportError: broken on purpose)"]
    assert (got.details["packages"], got.details["digest"], got.details["passed"]) == (2, D, False)


def test_a_package_none_of_whose_modules_is_installed_fails() -> None:
    got = judge(answer([pkg("ghost", False, ghost="absent")]), "e", "n1", 0)
    assert isinstance(got, NotVerified) and "ghost (none of its modules is installed)" in got.message


def test_kernels_that_fail_or_were_not_run_fail_the_node() -> None:
    torch, jax = pkg("torch"), pkg("jax")
    ok = judge(answer([torch], {"torch": "ok: matmul on H200"}, asked=True), "e", "n", 1)
    assert isinstance(ok, Verified) and ok.kernels == {"torch": "ok: matmul on H200"}
    bad = judge(answer([torch, jax], {"torch": "error: RuntimeError: no GPU"}, asked=True), "e", "n", 1)
    assert isinstance(bad, NotVerified)
    assert bad.details["failed"] == ["torch kernel (error: RuntimeError: no GPU)", "jax kernel (not run)"]
    # not asked (a CPU node): no kernel is expected
    assert isinstance(judge(answer([torch, jax]), "e", "n", 1), Verified)


@pytest.mark.parametrize(
    "hostile",
    [{}, {"result": "x"}, {"result": {"packages": "x"}}, {"result": {"packages": [1, None, "x"]}}],
)
def test_a_malformed_answer_never_passes_and_never_raises(hostile: dict[str, Any]) -> None:
    assert isinstance(judge(hostile, "e", "n", 0), NotVerified)


def test_many_failures_are_listed_briefly() -> None:
    broken = [pkg(f"p{i}", False, **{f"p{i}": "error: ImportError: x"}) for i in range(8)]
    got = judge(answer(broken), "e", "n", 0)
    assert isinstance(got, NotVerified) and got.message.endswith("and 3 more")
    assert len(got.details["failed"]) == 8


def test_a_push_whose_check_failed_counts_the_node_as_failed_but_keeps_its_status() -> None:
    ok = Delivered("ok", D, bytes_sent=5)
    failed = judge(answer([pkg("b", False, b="error: ImportError: x")]), "e", "n2", 1.0)
    assert isinstance(failed, NotVerified)
    checks: GroupResult[Verified] = GroupResult({"n1": Verified(D, "prefix", "3.11", 3), "n2": failed})
    report = DeliveryReport("push", "e", D, GroupResult({"n1": ok, "n2": ok, "n3": ok}), verify=checks)
    assert report.outcome == "partial" and report.exit_code == 1
    doc = report.as_json()
    assert (doc["ok"], doc["outcome"]) == (False, "partial")
    assert doc["verify"] == {"outcome": "partial", "passed": ["n1"], "failed": ["n2"], "not_run": ["n3"]}
    assert doc["nodes"]["n1"]["ok"] and doc["nodes"]["n1"]["verify"]["passed"]
    n2 = doc["nodes"]["n2"]
    assert n2["status"] == "ok" and n2["ok"] is False and n2["error"] == failed.message
    assert n2["verify"]["failed"] == ["b (b: ImportError: x)"] and n2["hint"] == failed.hint
    assert doc["nodes"]["n3"]["verify"] is None and doc["nodes"]["n3"]["ok"]
    # a push without --verify reads as before
    plain = DeliveryReport("push", "e", D, GroupResult({"n1": ok}))
    assert plain.as_json()["verify"] is None and "verify" not in plain.as_json()["nodes"]["n1"]
    # a node that failed to deliver stays failed, whatever its check
    undelivered = DeliveryReport(
        "push", "e", D, GroupResult({"n1": NotDelivered("x", digest=D)}), verify=GroupResult({})
    )
    assert undelivered.outcome == "none"


def test_verify_report_json() -> None:
    unreachable = NotVerified.of(TransportError("n3", "connection refused"))
    report = VerifyReport("e", GroupResult({"n1": Verified(D, "docker", "3.11", 2), "n3": unreachable}))
    doc = report.as_json()
    assert (doc["schema"], doc["ok"], doc["outcome"], report.exit_code) == (
        "envctl.verify/1",
        False,
        "partial",
        1,
    )
    assert doc["passed"] == ["n1"] and doc["failed"] == ["n3"]
    assert (
        doc["nodes"]["n3"]["error"] == "verify: n3: connection refused"
        and doc["nodes"]["n3"]["passed"] is False
    )
    assert doc["nodes"]["n1"]["runtime"] == "docker"
