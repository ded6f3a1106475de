"""envctl's node agent: the node side of push, status and rollback. Standard library only.

This module is the command line; each subcommand lives with its idea (``receive``: have, receive,
verify; ``facts``: what the node is made of; ``smoke``: run the current environment's import check; ``activate``: epoch, claim, prepare, switch, restore, rollback; ``state``; ``gc``) over ``store``,
``runtimes`` and ``unpack``. Uploaded to each node as one zip of this package
(``envctl.node.bundle``), stored content-addressed at ``<store>/agent/<sha256>.pyz`` and run as
``python3 AGENT --store STORE SUBCOMMAND ARGS`` over the transport: a node needs nothing but
python3 (>= 3.7). Every subcommand prints one JSON document on stdout; a failure prints
``{"error": MESSAGE, "kind": KIND}`` and exits 3 (0 with ``--soft``, for callers that only read
stdout).
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from typing import NoReturn

from envctl.node import checks, epochs, unpack_policy
from envctl.node.activate import (
    cmd_claim,
    cmd_epoch,
    cmd_prepare,
    cmd_restore,
    cmd_rollback,
    cmd_switch,
)
from envctl.node.checks import show
from envctl.node.facts import cmd_facts
from envctl.node.gc import cmd_gc
from envctl.node.pull import cmd_fetch
from envctl.node.receive import cmd_have, cmd_receive, cmd_verify
from envctl.node.relay import cmd_fetch as cmd_relay_fetch
from envctl.node.relay import cmd_serve as cmd_relay_serve
from envctl.node.runtimes import RUNTIMES
from envctl.node.smoke import cmd_smoke
from envctl.node.state import cmd_state
from envctl.node.store import AgentError, Store, check_digest, check_env

COMMANDS = {
    "have": cmd_have,
    "receive": cmd_receive,
    "fetch": cmd_fetch,
    "verify": cmd_verify,
    "prepare": cmd_prepare,
    "switch": cmd_switch,
    "restore": cmd_restore,
    "rollback": cmd_rollback,
    "state": cmd_state,
    "gc": cmd_gc,
    "epoch": cmd_epoch,
    "claim": cmd_claim,
    "facts": cmd_facts,
    "relay-serve": cmd_relay_serve,
    "relay-fetch": cmd_relay_fetch,
    "smoke": cmd_smoke,
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as the agent's JSON error, not a usage text."""

    def error(self, message: str) -> NoReturn:
        raise AgentError(f"bad agent command line: {show(message)}", "input")


class _Once(argparse.Action):
    """An option that may be given once: a sudo rule pins ``--store`` and ``--prefix-root`` ahead
    of a wildcard (envctl bootstrap), so a second one must not move the agent elsewhere."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: object, values: object, option: object = None
    ) -> None:
        seen = f"_given_{self.dest}"
        if getattr(namespace, seen, False):
            raise AgentError(f"{option} given twice", "input")
        setattr(namespace, seen, True)
        setattr(namespace, self.dest, values)


def parser() -> argparse.ArgumentParser:
    """The agent's command line; every value is checked (full matches, finite numbers)."""
    p = _Parser(prog="envctl-agent")
    p.add_argument("--store", required=True, type=checks.check_path, action=_Once)
    p.add_argument("--prefix-root", default="/opt/envctl/envs", type=checks.check_path, action=_Once)
    p.add_argument("--docker-host", default=None, type=checks.check_text)
    p.add_argument("--runtime", default="oci", choices=RUNTIMES)
    p.add_argument("--lock-timeout", type=checks.seconds, default=600.0)
    p.add_argument("--idle-timeout", type=checks.seconds, default=60.0)
    p.add_argument("--by", default="unknown", type=checks.check_text)
    p.add_argument("--force", action="store_true")
    p.add_argument("--soft", action="store_true", help="exit 0 on failure (the JSON says it)")
    limits = unpack_policy.Limits()
    p.add_argument("--max-entries", type=checks.count, default=limits.max_entries)
    p.add_argument("--max-bytes", type=checks.count, default=limits.max_bytes)
    p.add_argument("--max-depth", type=checks.count, default=limits.max_depth)
    sub = p.add_subparsers(dest="command", required=True)
    have = sub.add_parser("have")
    have.add_argument("digests", nargs="*", type=check_digest)
    have.add_argument("--stdin", action="store_true", help="more digests, one a line on stdin")
    sub.add_parser("receive")
    sub.add_parser("fetch")  # a JSON request on stdin (envctl.node.pull)
    sub.add_parser("verify").add_argument("manifest", type=check_digest)
    for name in ("prepare", "switch"):
        sp = sub.add_parser(name)
        sp.add_argument("env", type=check_env)
        sp.add_argument("manifest", type=check_digest)
        epochs.add_ballot_options(sp, required=name == "switch")  # preparing changes nothing
    for name in ("restore", "rollback", "claim"):
        sp = sub.add_parser(name)
        sp.add_argument("env", type=check_env)
        epochs.add_ballot_options(sp, required=True)
        if name == "rollback":
            sp.add_argument("--to", required=True, type=check_digest, help="the previous digest")
    sub.add_parser("epoch").add_argument("env", type=check_env)
    state = sub.add_parser("state")
    state.add_argument("envs", nargs="*", type=check_env)
    state.add_argument("--verify", action="store_true", help="rehash every blob of each current")
    state.add_argument("--members", action="store_true", help="the nodes each current was for")
    sub.add_parser("facts")  # reads only: see envctl.node.facts
    sub.add_parser("relay-serve")  # relay: one JSON line on stdin, see envctl.node.relay
    sub.add_parser("relay-fetch")  # relay: one JSON document on stdin
    smoke = sub.add_parser("smoke")  # runs the current environment: see envctl.node.smoke
    smoke.add_argument("env", type=check_env)
    smoke.add_argument("--digest", type=check_digest, help="fail unless ENV is this digest")
    smoke.add_argument("--gpus", action="store_true", help="a GPU node: run a kernel per framework")
    smoke.add_argument("--timeout", type=checks.seconds, default=600.0)
    sub.add_parser("gc").add_argument("--max-age", type=checks.hours, default=24.0, help="hours")
    return p


MAX_MESSAGE = 2000  # characters of one error: each echoed value is cut already, this is the net


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; print its JSON result (or the error) on stdout."""
    try:
        args = parser().parse_args(argv)
        result = COMMANDS[args.command](Store(args.store), args)
    except unpack_policy.UnpackError as exc:
        result, code = {"error": str(exc), "kind": exc.kind}, 3
    except AgentError as exc:
        result, code = {"error": str(exc), "kind": exc.kind, **getattr(exc, "extra", {})}, 3
    except OSError as exc:
        kinds = {errno.ENOSPC: "nospace", errno.EDQUOT: "nospace"}
        kinds.update({errno.EACCES: "permission", errno.EPERM: "permission"})  # see nodeclient's hint
        kind = kinds.get(exc.errno or 0, "os")
        where = show(exc.filename) if exc.filename else "the store"
        result, code = {"error": f"{where}: {exc.strerror}", "kind": kind}, 3
    except Exception as exc:  # report, never a bare traceback the caller cannot parse
        result, code = {"error": f"agent bug: {type(exc).__name__}: {show(str(exc))}", "kind": "bug"}, 3
    else:
        code = 0
    if code and len(result["error"]) > MAX_MESSAGE:
        result["error"] = result["error"][:MAX_MESSAGE] + "..."
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    if code:
        sys.stderr.write("envctl-agent: {}\n".format(result["error"]))
    return 0 if code and "--soft" in (argv if argv is not None else sys.argv) else code


if __name__ == "__main__":
    sys.exit(main())
