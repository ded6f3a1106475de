"""Render the node bootstrap script from its template (package data) and write it where asked.

Only values ``core.bootstrap.check_options`` accepted reach the template, and each is
shell-quoted on its way in; a placeholder left over is a bug, never a script.
"""

from __future__ import annotations

import base64
import re
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from envctl.adapters.outputs import FileKind, write_owned_file
from envctl.core.bootstrap import MARKER, BootstrapOptions, check_options, check_sha256
from envctl.node.bundle import agent_bundle

TEMPLATE = "bootstrap.sh.in"
_PLACEHOLDER = re.compile(r"@@[A-Z0-9_]+@@")


@dataclass(frozen=True)
class Script:
    """A rendered script and what it was rendered from."""

    text: str
    options: BootstrapOptions
    agent_sha256: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (without the text)."""
        return {"options": self.options.to_dict(), "agent_sha256": self.agent_sha256, "bytes": len(self.text)}


def _template() -> str:
    return resources.files(__package__).joinpath(TEMPLATE).read_text(encoding="utf-8")


def render(options: BootstrapOptions) -> Script:
    """The bootstrap script for ``options``, with this envctl's agent embedded (pinned by sha256)."""
    check_options(options)
    bundle = agent_bundle()
    sha = check_sha256(bundle.sha256)
    encoded = base64.encodebytes(bundle.data).decode("ascii").rstrip("\n")
    values = {
        "RUNTIME": shlex.quote(options.runtime),
        "GPU": "1" if options.gpu else "0",
        "STORE": shlex.quote(options.store),
        "PREFIX_ROOT": shlex.quote(options.prefix_root),
        "SERVICE_USER": shlex.quote(options.service_user or ""),
        "AUTHORIZED_KEY": shlex.quote(options.authorized_key or ""),
        "AGENT_SHA256": sha,
        "AGENT_BASE64": encoded,
    }
    text = _PLACEHOLDER.sub(lambda m: values[m.group(0).strip("@")], _template())
    leftover = _PLACEHOLDER.search(text)
    if leftover is not None:  # pragma: no cover - a template bug
        raise AssertionError(f"unrendered placeholder {leftover.group(0)}")
    return Script(text, options, sha)


def _is_script(head: bytes) -> bool:
    """A bootstrap script envctl wrote: its second line is the marker."""
    lines = head.decode("utf-8", "replace").splitlines()
    return len(lines) > 1 and lines[1].startswith(MARKER)


#: an owned output (adapters.outputs): -o replaces only a script envctl wrote, unless --force
SCRIPT = FileKind("bootstrap-script", "a bootstrap script envctl wrote", _is_script)


def write_script(script: Script, path: Path, *, force: bool = False) -> None:
    """Write ``script`` to ``path`` (executable, atomically) as an owned output."""
    write_owned_file(path, script.text, SCRIPT, force=force, executable=True)
