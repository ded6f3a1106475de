"""`envctl lock` option parsing: --upgrade with and without a package, --check exit status."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import envctl.cli.lock as cli_lock
from envctl.core.lock import LockOptions
from envctl.services.lock.lock import LockResult


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[LockOptions]:
    calls: list[LockOptions] = []

    def fake(profile: Path, options: LockOptions, **_: object) -> LockResult:
        calls.append(options)
        status = "stale" if options.check else "reused"
        return LockResult(options.output, status, "0" * 64, "2025-01-01T00:00:00Z", reason="x")

    monkeypatch.setattr(cli_lock, "lock_profile", fake)
    return calls


@pytest.mark.parametrize(
    ("args", "upgrade", "packages"),
    [
        ([], False, ()),
        (["--upgrade"], True, ()),
        (["--upgrade", "torch"], True, ("torch",)),
        (["--upgrade", "torch", "--upgrade", "numpy"], True, ("torch", "numpy")),
    ],
)
def test_upgrade_forms(
    seen: list[LockOptions], args: list[str], upgrade: bool, packages: tuple[str, ...]
) -> None:
    result = CliRunner().invoke(cli_lock.lock, ["p.toml", *args])
    assert result.exit_code == 0, result.output
    assert (seen[-1].upgrade, seen[-1].upgrade_packages) == (upgrade, packages)


def test_check_exits_1_when_stale(seen: list[LockOptions]) -> None:
    result = CliRunner().invoke(cli_lock.lock, ["p.toml", "--check", "--json"])
    assert result.exit_code == 1
    assert '"status": "stale"' in result.output and '"ok": false' in result.output
