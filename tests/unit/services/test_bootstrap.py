"""The bootstrap script's rendering, its owned output, and the run over a (fake) transport."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

import pytest

from envctl.core import bootstrap as core
from envctl.core.bootstrap import BootstrapOptions, check_options, fact_changes, parse_summary
from envctl.core.node import DEFAULT_PREFIX_ROOT, DEFAULT_STORE, NodeSpec
from envctl.core.transport import CommandResult
from envctl.errors import InputError, RemoteError
from envctl.node.bundle import agent_bundle
from envctl.services.bootstrap import run as svc
from envctl.services.bootstrap.script import render, write_script

from .test_fanout import FakePool

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGv0cmVhbGx5LWEta2V5 me@host"


# ---------------------------------------------------------------- options: only known shapes
@pytest.mark.parametrize(
    ("options", "named"),
    [
        (BootstrapOptions(store="relative"), "--store"),
        (BootstrapOptions(store="/var/lib/../etc"), "--store"),
        (BootstrapOptions(store="/var/lib/envctl; rm -rf /"), "--store"),
        (BootstrapOptions(prefix_root="/opt/$(id)"), "--prefix-root"),
        (BootstrapOptions(prefix_root="/"), "--prefix-root"),
        (BootstrapOptions(store="/a", prefix_root="/a"), "same path"),
        (BootstrapOptions(service_user="Bad User"), "--user"),
        (BootstrapOptions(service_user="root"), "--user"),
        (BootstrapOptions(authorized_key=KEY), "--authorized-key needs --user"),
        (
            BootstrapOptions(service_user="envctl", authorized_key=KEY + "\nssh-rsa AAAA x"),
            "--authorized-key",
        ),
        (
            BootstrapOptions(service_user="envctl", authorized_key="ssh-ed25519 AAAA'$(id)'"),
            "--authorized-key",
        ),
        (BootstrapOptions(runtime="lxc"), "--runtime"),  # type: ignore[arg-type]
    ],
)
def test_bad_values_never_reach_a_script(options: BootstrapOptions, named: str) -> None:
    with pytest.raises(InputError) as err:
        render(options)
    assert named in err.value.message and "\n" not in err.value.message


def test_the_defaults_are_the_paths_the_agent_uses() -> None:
    options = check_options(BootstrapOptions())
    assert (options.store, options.prefix_root) == (DEFAULT_STORE, DEFAULT_PREFIX_ROOT)
    assert (NodeSpec("n", "h").store, NodeSpec("n", "h").prefix_root) == (DEFAULT_STORE, DEFAULT_PREFIX_ROOT)


# ---------------------------------------------------------------- rendering
def test_values_are_quoted_and_the_agent_is_embedded_whole() -> None:
    options = BootstrapOptions(runtime="docker", gpu=True, service_user="envctl", authorized_key=KEY)
    script = render(options)
    text = script.text
    assert not re.search(r"@@[A-Z0-9_]+@@", text)
    assert text.splitlines()[1].startswith(core.MARKER)
    assert f"AUTHORIZED_KEY={shlex.quote(KEY)}\n" in text and "RUNTIME=docker\n" in text and "GPU=1\n" in text
    body = text.split("<<'ENVCTL_AGENT_BASE64'", 1)[1].split("\nENVCTL_AGENT_BASE64\n", 1)[0]
    data = base64.b64decode("".join(body.splitlines()[1:]))
    assert data == agent_bundle().data and hashlib.sha256(data).hexdigest() == script.agent_sha256
    assert f"AGENT_SHA256={script.agent_sha256}\n" in text


def test_rendering_is_deterministic() -> None:
    assert render(BootstrapOptions()).text == render(BootstrapOptions()).text


# ---------------------------------------------------------------- -o: outputs are owned
def test_output_replaces_its_own_file_but_not_another(tmp_path: Path) -> None:
    out = tmp_path / "bootstrap.sh"
    write_script(render(BootstrapOptions()), out)
    assert out.stat().st_mode & 0o777 == 0o755
    write_script(render(BootstrapOptions(runtime="podman")), out)  # envctl's own: replaced
    assert "RUNTIME=podman\n" in out.read_text()
    foreign = tmp_path / "mine.sh"
    foreign.write_text("#!/bin/sh\necho my own script\n")
    with pytest.raises(InputError, match="exists and is not a bootstrap script envctl wrote"):
        write_script(render(BootstrapOptions()), foreign)
    assert foreign.read_text() == "#!/bin/sh\necho my own script\n"
    write_script(render(BootstrapOptions()), foreign, force=True)
    assert foreign.read_text().splitlines()[1].startswith(core.MARKER)
    with pytest.raises(InputError, match="is a directory"):
        write_script(render(BootstrapOptions()), tmp_path)
    with pytest.raises(InputError, match="/proc"):  # a traceback (FileNotFoundError) before
        write_script(render(BootstrapOptions()), Path("/proc/envctl-decoy.sh"))


# ---------------------------------------------------------------- the summary line
def summary(
    mode: str,
    changed: Sequence[str] = (),
    missing: Sequence[str] = (),
    failed: Sequence[str] = (),
    **facts: str,
) -> str:
    doc = {
        "schema": "envctl.bootstrap-node/1", "mode": mode, "changed": list(changed), "missing": list(missing),
        "failed": list(failed), "facts": facts, "host_keys": ["256 SHA256:abc root@n (ED25519)"],
    }  # fmt: skip
    return f"ok: something\n{core.SUMMARY_PREFIX}{json.dumps(doc)}\nbootstrap: ...\n"


def test_summary_is_read_back_and_a_missing_one_names_the_node() -> None:
    run = parse_summary(summary("check", ["python"], python="none"), 4, "n1")
    assert (run.mode, run.changed, run.facts, run.exit_code) == ("check", ("python",), {"python": "none"}, 4)
    assert run.lines == ("ok: something", "bootstrap: ...")
    with pytest.raises(InputError, match="n1: the bootstrap script printed no summary"):
        parse_summary("sh: 1: syntax error\n", 2, "n1")
    with pytest.raises(InputError, match="unknown schema"):
        parse_summary(core.SUMMARY_PREFIX + '{"schema": "x/1"}\n', 0, "n1")
    assert fact_changes({"python": "none", "os": "d"}, {"python": "3.11.2", "os": "d"}) == {
        "python": ("none", "3.11.2")
    }


# ---------------------------------------------------------------- the run over SSH
class Node:
    """A node whose script answers --check from its state and applies by emptying it."""

    def __init__(self, needs: Sequence[str], fail: bool = False) -> None:
        self.needs, self.fail = list(needs), fail
        self.calls: list[tuple[str, ...]] = []

    def answer(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(tuple(argv))
        python = "none" if "python" in self.needs else "3.11.2"
        if argv[-1] == "--check":
            return CommandResult(
                tuple(argv), 4 if self.needs else 0, summary("check", self.needs, python=python).encode(), b""
            )
        if self.fail:
            out = "failed: python: could not install python3 (apt-get)\n" + summary(
                "apply", failed=["python"]
            )
            return CommandResult(tuple(argv), 1, out.encode(), b"")
        done, self.needs = self.needs, []
        return CommandResult(tuple(argv), 0, summary("apply", done, python="3.11.2").encode(), b"")


def test_runs_only_where_the_check_says_so_and_reports_before_and_after() -> None:
    fleet = {"fresh": Node(["python", "dirs"]), "ready": Node([]), "broken": Node(["python"], fail=True)}
    pool = FakePool(lambda name, argv: fleet[name].answer(argv))
    specs = [NodeSpec("fresh", "h1"), NodeSpec("ready", "h2", user="admin"), NodeSpec("broken", "h3")]
    results = svc.bootstrap_nodes(specs, pool, BootstrapOptions())
    fresh, ready, broken = results["fresh"], results["ready"], results["broken"]
    assert isinstance(fresh, svc.NodeBootstrap) and isinstance(ready, svc.NodeBootstrap)
    assert fresh.status == "bootstrapped" and fresh.as_json()["needed"] == ["python", "dirs"]
    assert fresh.as_json()["left"] == [] and fresh.fact_changes == {"python": ("none", "3.11.2")}
    assert [c[-1] for c in fleet["fresh"].calls] == ["--check", "envctl-bootstrap", "--check"]
    assert ready.status == "unchanged" and len(fleet["ready"].calls) == 2  # checked twice, never run
    assert all(c[:2] == ("sudo", "-n") for c in fleet["ready"].calls)  # a non-root login
    assert all(c[0] == "sh" for c in fleet["fresh"].calls)
    assert isinstance(broken, RemoteError) and "broken: bootstrap failed: python" in broken.message
    assert "could not install python3" in broken.message and results.outcome == "partial"
    from envctl.adapters import ledger

    [event] = ledger.events("bootstrap")
    assert (event.outcome, event.targets) == ("partial", ("fresh", "ready", "broken"))
    statuses = {n: v["status"] for n, v in event.details["nodes"].items()}
    assert statuses == {"fresh": "bootstrapped", "ready": "unchanged", "broken": "failed"}


def test_each_node_gets_its_inventory_paths_and_runtime() -> None:
    node = NodeSpec("n", "h", runtime="docker", store="/srv/store", prefix_root="/srv/envs")
    options = svc.options_for(node, BootstrapOptions(), runtime_given=False)
    assert (options.runtime, options.store, options.prefix_root) == ("docker", "/srv/store", "/srv/envs")
    assert (
        svc.options_for(NodeSpec("n", "h"), BootstrapOptions(), runtime_given=False).runtime == "prefix"
    )  # oci
    bad = NodeSpec("n7", "h", store="/srv/my store")
    with pytest.raises(InputError, match="node n7: --store"):
        svc.bootstrap_nodes([bad], FakePool(), BootstrapOptions())


def test_a_summary_nested_too_deeply_is_one_error_naming_the_node() -> None:
    # a node's output is hostile like any input: json.loads raised RecursionError before
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InputError, match="n1: the bootstrap summary: not JSON: nested too deeply"):
        core.parse_summary(f"{core.SUMMARY_PREFIX}{deep}\n", 0, "n1")
