"""``envctl bootstrap -i INVENTORY``: the bootstrap script on every node that needs it, over SSH.

Per node, through the one multi-node path (``services.cluster.fanout``): the script's own
``--check`` says whether the node needs it ("before"); only then does the script run; a second
``--check`` ("after") proves what the run left, and the facts the two checks reported give the
before/after difference. The script reaches the node on stdin, is written to a temporary file
there and run from it (so a package manager reading stdin cannot eat the rest of the script); a
login other than root runs it through ``sudo -n``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from envctl.adapters import ledger
from envctl.core import bootstrap as core
from envctl.core.bootstrap import BootstrapOptions, NodeRun
from envctl.core.delivery import EVENT_OUTCOME
from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector, Transport
from envctl.errors import EnvctlError, InputError, RemoteError
from envctl.node.bundle import agent_bundle
from envctl.services.bootstrap.script import render
from envctl.services.cluster.fanout import on_nodes

#: one node's bootstrap may install packages: minutes, not seconds
NODE_TIMEOUT_S = 1800.0
_RUN_FROM_FILE = 'f=$(mktemp) || exit 1; cat >"$f"; sh "$f" "$@"; rc=$?; rm -f "$f"; exit $rc'

Status = Literal["unchanged", "bootstrapped", "incomplete"]


@dataclass(frozen=True)
class NodeBootstrap:
    """What bootstrap found and did on one node."""

    status: Status
    before: NodeRun
    applied: NodeRun | None  # None: the node needed nothing
    after: NodeRun

    @property
    def fact_changes(self) -> dict[str, tuple[str | None, str | None]]:
        """Facts that differ between the check before and the check after."""
        return core.fact_changes(self.before.facts, self.after.facts)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready view: the two checks, what the run changed, the facts that moved."""
        return {
            "status": self.status,
            "needed": list(self.before.changed),
            "changed": list(self.applied.changed) if self.applied else [],
            "left": list(self.after.changed),
            "missing": list(self.after.missing),
            "facts_before": dict(self.before.facts),
            "facts_after": dict(self.after.facts),
            "facts_changed": {k: {"before": b, "after": a} for k, (b, a) in self.fact_changes.items()},
            "host_keys": list(self.after.host_keys),
        }


def options_for(node: NodeSpec, options: BootstrapOptions, runtime_given: bool) -> BootstrapOptions:
    """The script options for ``node``: its own store and prefix root; its runtime unless given."""
    runtime = options.runtime
    if not runtime_given:
        runtime = node.runtime if node.runtime in core.SCRIPT_RUNTIMES else "prefix"  # type: ignore[assignment]
    return dataclasses.replace(options, runtime=runtime, store=node.store, prefix_root=node.prefix_root)


@functools.lru_cache(maxsize=16)
def _script(options: BootstrapOptions) -> bytes:
    return render(options).text.encode()


def run_script(node: NodeSpec, transport: Transport, script: bytes, *, check: bool) -> NodeRun:
    """Run ``script`` on the node (``--check`` or for real) and read its summary."""
    argv = ["sh", "-c", _RUN_FROM_FILE, "envctl-bootstrap", *(["--check"] if check else [])]
    if node.user != "root":
        argv = ["sudo", "-n", *argv]
    result = transport.run(argv, stdin=script, check=False, timeout=NODE_TIMEOUT_S)
    output = result.stdout.decode("utf-8", "replace")
    if result.exit_code == core.EXIT_USAGE or (result.exit_code == 1 and b"sudo:" in result.stderr):
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RemoteError(
            node.name,
            f"cannot run the bootstrap script as root: {reason[-1] if reason else 'exit 2'}",
            hint=f"log in as root, or give {node.user} passwordless sudo for the bootstrap",
        )
    run = core.parse_summary(output, result.exit_code, node.name)
    if run.failed:
        error = RemoteError(node.name, f"bootstrap failed: {', '.join(run.failed)}: " + _failure(run))
        error.details = {"lines": list(run.lines[-40:]), "exit_code": result.exit_code}
        raise error
    return run


def _failure(run: NodeRun) -> str:
    return "; ".join(line.removeprefix("failed: ") for line in run.lines if line.startswith("failed: "))[:400]


def bootstrap_node(
    node: NodeSpec, transport: Transport, options: BootstrapOptions, *, force: bool = False
) -> NodeBootstrap:
    """Check, run if needed (or ``force``), check again."""
    script = _script(options)
    before = run_script(node, transport, script, check=True)
    applied = None
    if force or not before.nothing_to_change:
        applied = run_script(node, transport, script, check=False)
    after = run_script(node, transport, script, check=True)
    if after.missing or after.changed:
        status: Status = "incomplete"
    else:
        status = "unchanged" if applied is None or not applied.changed else "bootstrapped"
    return NodeBootstrap(status, before, applied, after)


def bootstrap_nodes(
    nodes: Sequence[NodeSpec],
    pool: Connector,
    options: BootstrapOptions,
    *,
    runtime_given: bool = False,
    force: bool = False,
    parallel: int = 16,
) -> GroupResult[NodeBootstrap]:
    """Bootstrap every node that needs it; per node its checks before and after."""
    for node in nodes:  # bad options fail before any node is touched
        try:
            core.check_options(options_for(node, options, runtime_given))
        except InputError as exc:
            raise InputError(f"node {node.name}: {exc.message}", exc.hint) from None

    def one(node: NodeSpec, transport: Transport) -> NodeBootstrap:
        return bootstrap_node(node, transport, options_for(node, options, runtime_given), force=force)

    results = on_nodes(nodes, pool, one, parallel=parallel, timeout=NODE_TIMEOUT_S + 60)
    summary = {
        name: {"status": "failed", "error": r.message} if isinstance(r, EnvctlError) else r.as_json()
        for name, r in results.items()
    }
    outcome = EVENT_OUTCOME[results.outcome]
    ledger.record(
        "bootstrap", f"agent {agent_bundle().sha256[:12]}", list(results), outcome, {"nodes": summary}
    )
    return results
