"""What a node bootstrap script is made of, and what one run of it reported. Pure.

``envctl bootstrap script`` renders ``BootstrapOptions`` into a POSIX sh script (services.bootstrap);
every value is validated here first, so the script only ever holds values of a known shape, and
each is shell-quoted as well. The script ends with one machine-readable line,
``envctl-bootstrap-summary {JSON}``, which ``parse_summary`` reads back into a ``NodeRun``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from envctl.core.documents import loads_json
from envctl.core.node import DEFAULT_PREFIX_ROOT, DEFAULT_STORE
from envctl.errors import InputError

ScriptRuntime = Literal["docker", "podman", "prefix"]
SCRIPT_RUNTIMES: tuple[ScriptRuntime, ...] = ("docker", "podman", "prefix")
SUMMARY_PREFIX = "envctl-bootstrap-summary "
#: the script's second line; -o replaces only a file that carries it (outputs are owned)
MARKER = "# envctl-bootstrap/1:"
#: the script's exit codes (its header documents them too)
EXIT_READY, EXIT_FAILED, EXIT_USAGE, EXIT_MISSING, EXIT_WOULD_CHANGE = 0, 1, 2, 3, 4

_PATH = re.compile(r"/[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
_KEY = re.compile(
    r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [A-Za-z0-9._@+=:-]{1,100})?"
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BootstrapOptions:
    """What the script prepares; ``check_options`` has validated every field."""

    runtime: ScriptRuntime = "prefix"
    gpu: bool = False
    store: str = DEFAULT_STORE
    prefix_root: str = DEFAULT_PREFIX_ROOT
    service_user: str | None = None
    authorized_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return dict(self.__dict__)


def _cut(value: str) -> str:
    return repr(value[:60] + ("..." if len(value) > 60 else ""))


def check_path(value: str, what: str) -> str:
    """An absolute, normalized path of safe characters (no ``..``, no trailing slash)."""
    parts = value.split("/")[1:]
    if not _PATH.fullmatch(value) or any(p in (".", "..") for p in parts) or value == "/":
        raise InputError(
            f"{what}: expected an absolute path of letters, digits and ._+- , got {_cut(value)}",
            hint="e.g. /var/lib/envctl",
        )
    return value


def check_options(options: BootstrapOptions) -> BootstrapOptions:
    """``options`` if every value has a shape the script may hold; else an InputError naming it."""
    if options.runtime not in SCRIPT_RUNTIMES:
        raise InputError(
            f"--runtime: expected one of {', '.join(SCRIPT_RUNTIMES)}, got {_cut(options.runtime)}"
        )
    check_path(options.store, "--store")
    check_path(options.prefix_root, "--prefix-root")
    if options.store == options.prefix_root:
        raise InputError("--store and --prefix-root are the same path", hint="give each its own directory")
    if options.service_user is not None and not _USER.fullmatch(options.service_user):
        raise InputError(
            f"--user: expected a system user name ([a-z_][a-z0-9_-]*, up to 31), got {_cut(options.service_user)}"
        )
    if options.service_user == "root":
        raise InputError("--user: the service user must not be root", hint="e.g. --user envctl")
    if options.authorized_key is not None:
        if options.service_user is None:
            raise InputError("--authorized-key needs --user", hint="the key is installed for that user")
        if not _KEY.fullmatch(options.authorized_key):
            raise InputError(
                f"--authorized-key: expected one OpenSSH public key line, got {_cut(options.authorized_key)}",
                hint="the contents of a .pub file: TYPE BASE64 [COMMENT]",
            )
    return options


def check_sha256(value: str) -> str:
    """A lower-case hex sha256 (the agent bundle's)."""
    if not _SHA256.fullmatch(value):
        raise InputError(f"expected a sha256 in hex, got {_cut(value)}")
    return value


@dataclass(frozen=True)
class NodeRun:
    """What one run of the script on a node reported (its summary line)."""

    mode: Literal["check", "apply"]
    exit_code: int
    changed: tuple[str, ...]
    missing: tuple[str, ...]
    failed: tuple[str, ...]
    facts: dict[str, str] = field(default_factory=dict)
    host_keys: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()  # the script's report, one line per step

    @property
    def nothing_to_change(self) -> bool:
        """The run changed (or, checking, would change) nothing and nothing failed."""
        return not self.changed and not self.failed

    def as_json(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "mode": self.mode,
            "exit_code": self.exit_code,
            "changed": list(self.changed),
            "missing": list(self.missing),
            "failed": list(self.failed),
            "facts": dict(self.facts),
            "host_keys": list(self.host_keys),
        }


def parse_summary(output: str, exit_code: int, node: str) -> NodeRun:
    """The ``NodeRun`` in the script's output; InputError naming ``node`` when there is none."""
    lines = output.splitlines()
    summary = [line for line in lines if line.startswith(SUMMARY_PREFIX)]
    if not summary:
        last = lines[-1] if lines else "(no output)"
        raise InputError(f"{node}: the bootstrap script printed no summary (exit {exit_code}): {last[:200]}")
    # a node's own output: bounded like any document (deep nesting is one error, not a crash)
    doc = loads_json(summary[-1][len(SUMMARY_PREFIX) :], f"{node}: the bootstrap summary")
    if not isinstance(doc, dict) or doc.get("schema") != "envctl.bootstrap-node/1":
        raise InputError(f"{node}: the bootstrap summary has an unknown schema")

    def words(key: str) -> tuple[str, ...]:
        value = doc.get(key, [])
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    facts = doc.get("facts", {})
    return NodeRun(
        mode="check" if doc.get("mode") == "check" else "apply",
        exit_code=exit_code,
        changed=words("changed"),
        missing=words("missing"),
        failed=words("failed"),
        facts={str(k): str(v) for k, v in facts.items()} if isinstance(facts, dict) else {},
        host_keys=words("host_keys"),
        lines=tuple(line for line in lines if not line.startswith(SUMMARY_PREFIX)),
    )


def fact_changes(before: dict[str, str], after: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    """Each fact that differs between two runs: name -> (before, after)."""
    keys = sorted(set(before) | set(after))
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}
