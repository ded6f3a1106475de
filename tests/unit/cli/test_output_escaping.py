"""Finding 5 and its class: whatever a file, a node or an index put into a string is printed as
that string. Markup (``[/x]``, ``[bold]``), emoji codes and escape sequences go through every
table and line of the CLI literally; nothing raises MarkupError or restyles the output.

Every show path of envctl/cli is fed the same hostile strings; the guard at the end keeps markup
out of the CLI's sources, so a new print path cannot bring it back.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from envctl.cli import cli
from envctl.cli import output as cli_output
from envctl.core.delivery import Delivered, DeliveryReport, NotDelivered
from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.errors import RemoteError, TransportError

CLI = Path(__file__).resolve().parents[3] / "envctl" / "cli"
#: markup that would raise (closing tag with no opening one), restyle, turn into an emoji, or
#: drive the terminal
HOSTILE = ("[/x]", "[bold]B[/bold]", ":smile:", "dev/[/x]")
ESCAPE = "\x1b[2J"


def _assert_literal(text: str) -> None:
    for word in HOSTILE:
        assert word in text, text
    assert "\x1b" not in text and "\\x1b[2J" in text, text


def _hostile(prefix: str = "") -> str:
    return prefix + " ".join(HOSTILE) + ESCAPE


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Wide consoles (no wrapping inside a hostile word) and a private ledger."""
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "state"))
    consoles = [cli_output.console(), cli_output.console(err=True)]
    widths = [c.width for c in consoles]
    for c in consoles:
        c.width = 1000
    yield
    for c, w in zip(consoles, widths, strict=True):
        c.width = w


def test_the_consoles_print_strings_literally(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.table import Table

    table = Table("node", _hostile("col "), title=_hostile("title "))
    table.add_row(_hostile(), _hostile())
    cli_output.console().print(_hostile(), markup=True)  # markup=True is not obeyed either
    cli_output.console().print(table)
    cli_output.console().rule(_hostile())
    cli_output.console().print(cli_output.styled(("ok", "green"), " ", _hostile()))
    _assert_literal(capsys.readouterr().out)


def test_errors_are_one_literal_line(capsys: pytest.CaptureFixture[str]) -> None:
    cli_output.report_error(RemoteError("n1", _hostile("agent: ") + "\nsecond line"), as_json=False)
    err = capsys.readouterr().err
    _assert_literal(err)
    assert err.count("\n") == 1


def _spec(name: str = "n1", host: str = "[/x]") -> NodeSpec:
    return NodeSpec(name=name, host=host)


def test_push_and_rollback_tables(capsys: pytest.CaptureFixture[str]) -> None:
    from envctl.cli.nodes_common import render_delivery

    nodes = GroupResult(
        {
            "n1": Delivered("ok", "sha256:" + "a" * 64),
            "n2": NotDelivered(_hostile("n2: tar entry ")),
            "n3": TransportError("n3", _hostile()),
        }
    )
    with pytest.raises(cli_output.NotOk):
        render_delivery(DeliveryReport("push", "demo", "sha256:" + "a" * 64, nodes), as_json=False)
    _assert_literal(capsys.readouterr().out)


def test_status_table(capsys: pytest.CaptureFixture[str]) -> None:
    from envctl.cli.status import _show
    from envctl.services.deliver.status import EnvStatus, NodeEnvs, StatusReport

    env = EnvStatus("demo", None, None, None, None, None, None, _hostile(), _hostile())
    report = StatusReport(GroupResult({"n1": NodeEnvs({"demo": env}), "n2": RemoteError("n2", _hostile())}))
    _show(report)
    _assert_literal(capsys.readouterr().out)


def test_inventory_show_table(tmp_path: Path) -> None:
    inv = tmp_path / "inv.toml"
    inv.write_text(
        '[defaults]\nssh_config = ""\n[nodes.n1]\nhost = "[/x]"\nuser = "[bold]B[/bold]"\n'
        'key = ":smile:"\nstore = "/dev/[/x]"\n'
    )
    out = CliRunner().invoke(cli, ["inventory", "show", "-i", str(inv)])
    assert out.exit_code == 0, out.output
    assert "[/x]" in out.stdout and "[bold]B[/bold]" in out.stdout and ":smile:" in out.stdout


def test_history_table(capsys: pytest.CaptureFixture[str]) -> None:
    from envctl.adapters import ledger
    from envctl.cli.history import _show

    ledger.record("push", _hostile(), [_hostile()], "ok", {"env": "demo"})
    _show(ledger.events())
    _assert_literal(capsys.readouterr().out)


def _patch(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, result: Any) -> None:
    monkeypatch.setattr(module, name, lambda *a, **k: result)


@pytest.fixture
def one_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An inventory of one node, and an SSH pool that is never used (the services are faked)."""
    import contextlib

    from envctl.cli import nodes_common

    monkeypatch.setattr(nodes_common, "ssh_pool", lambda _accept: contextlib.nullcontext())
    inv = tmp_path / "inv.toml"
    inv.write_text('[defaults]\nssh_config = ""\n[nodes.n1]\nhost = "127.0.0.1"\n')
    return inv


def test_gc_lines(monkeypatch: pytest.MonkeyPatch, one_node: Path) -> None:
    from envctl.services.deliver import gc

    _patch(monkeypatch, gc, "gc", GroupResult({"n1": RemoteError("n1", _hostile())}))
    out = CliRunner().invoke(cli, ["gc", "-i", str(one_node)])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    _assert_literal(out.stdout)


def test_exec_lines(monkeypatch: pytest.MonkeyPatch, one_node: Path) -> None:
    from envctl.services.cluster import reach

    outputs = GroupResult(
        {
            "n1": reach.NodeOutput(0, _hostile(), ""),
            "n2": reach.CommandFailed("n2", ["x"], reach.NodeOutput(3, "", _hostile())),
            "n3": TransportError("n3", _hostile()),
        }
    )
    _patch(monkeypatch, reach, "run_everywhere", outputs)
    out = CliRunner().invoke(cli, ["exec", "-i", str(one_node), "--", "true"])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    _assert_literal(out.stdout)


def test_inventory_check_lines(monkeypatch: pytest.MonkeyPatch, one_node: Path) -> None:
    from envctl.services.cluster import reach

    answers = GroupResult(
        {"n1": reach.NodeReach(_hostile(), _hostile(), 0.1), "n2": TransportError("n2", _hostile())}
    )
    _patch(monkeypatch, reach, "check_nodes", answers)
    out = CliRunner().invoke(cli, ["inventory", "check", "-i", str(one_node)])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    _assert_literal(out.stdout)


def test_lock_summary(capsys: pytest.CaptureFixture[str]) -> None:
    from envctl.cli.lock import _show
    from envctl.services.lock.lock import LockResult, PlatformSummary

    summary = PlatformSummary(_hostile(), 1, 0, _hostile(), None, None, (_hostile(),))
    result = LockResult(Path(_hostile()), "stale", "h" * 64, "2024", (summary,), _hostile(), (_hostile(),))
    _show(result)
    _assert_literal(capsys.readouterr().out)


def test_build_table(capsys: pytest.CaptureFixture[str]) -> None:
    from envctl.cli.build import _print_result
    from envctl.services.build.model import BuildResult, LayerReport

    layer = LayerReport(_hostile(), "n", _hostile(), "sha256:" + "a" * 64, "d", 1, 1, 1, False)
    result = BuildResult(
        "sha256:" + "b" * 64,
        "c",
        _hostile(),
        "e",
        "/p",
        "3.11",
        _hostile(),
        1,
        1,
        (layer,),
        {"oci": _hostile()},
        (_hostile(),),
        {"total": 1.0},
    )
    _print_result(result)
    _assert_literal(capsys.readouterr().out)


def test_matrix_table(capsys: pytest.CaptureFixture[str]) -> None:
    from envctl.cli.matrix import _print_rows

    _print_rows(_hostile(), [{"versions": _hostile(), "source": _hostile()}])
    _assert_literal(capsys.readouterr().out)


def test_push_progress_names_are_literal() -> None:
    import io

    from rich.console import Console

    from envctl.cli.progress import RichPushReporter, make_progress

    console = Console(file=io.StringIO(), force_terminal=False, width=1000)
    progress = make_progress(console)
    rep = RichPushReporter(progress)
    with progress:
        rep.node_started(_hostile(), 10)
        rep.node_finished(_hostile(), NotDelivered("x", status="failed"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[/x]" in text and "[bold]B[/bold]" in text


def test_no_markup_is_left_in_the_cli_sources() -> None:
    """Style goes through output.styled; a markup tag or markup=True in a print is a regression."""
    tag = re.compile(r"""["'][^"'\n]*\[/?(?:bold|dim|red|green|yellow|cyan|blue|magenta)[\] ]""")
    found = []
    for path in sorted(CLI.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if tag.search(line) or "markup=True" in line or "rich.markup" in line:
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert found == []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
