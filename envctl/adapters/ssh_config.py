"""The user's SSH configuration, resolved per host the way the user's own ssh resolves it.

With OpenSSH's client installed, ``ssh -G [-F CONFIG] -- HOST`` answers (argv, never a shell):
Include, Match, Host patterns, tokens and OpenSSH's defaults are applied by OpenSSH itself.
Without it, paramiko's ``SSHConfig`` parses what it can (it has no Include, for one); either way
``envctl.core.ssh_options`` turns the answer into inventory settings and warnings for what envctl
cannot honour.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from envctl.core.ssh_options import SshSettings, from_openssh, from_paramiko, parse_ssh_g
from envctl.errors import InputError

SSH_G_TIMEOUT_S = 20.0  # a `Match exec` command could hang
PARALLEL = 8  # ssh -G processes at once (each ~15 ms; a 1,000-node inventory costs ~2 s)
USER_CONFIG = "~/.ssh/config"
SYSTEM_CONFIG = "/etc/ssh/ssh_config"
_NOISE = ("Pseudo-terminal will not be allocated",)
MAX_CONFIG_BYTES = 1 << 20


def _read(path: Path) -> str:
    """A configuration file's text: a regular file, at most ``MAX_CONFIG_BYTES``."""
    try:
        if not path.is_file():
            raise InputError(f"{path}: not a regular file", hint="point ssh_config at a file")
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ssh config: {exc.strerror}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise InputError(f"{path}: ssh config over {MAX_CONFIG_BYTES} bytes")
    return data.decode("utf-8", "replace")


class OpenSshLookup:
    """``ssh -G`` per host name, cached; thread-safe. ``config`` None: ssh's own files."""

    def __init__(self, ssh: str, config: Path | None) -> None:
        self.ssh, self.config = ssh, config
        self.source = f"ssh -G -F {config}" if config is not None else "ssh -G"
        self._lock = threading.Lock()
        self._cache: dict[str, SshSettings] = {}
        self._baseline: dict[str, list[str]] | None = None

    def _options(self, name: str, config: str | None) -> dict[str, list[str]]:
        argv = [self.ssh, "-G", *(["-F", config] if config is not None else []), "--", name]
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=SSH_G_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise InputError(
                f"{self.source}: Host {name}: no answer within {SSH_G_TIMEOUT_S:g}s",
                hint="a Match exec command of the SSH configuration hangs?",
            ) from exc
        except OSError as exc:
            raise InputError(f"{self.source}: cannot run {self.ssh}: {exc.strerror}") from exc
        if done.returncode != 0:
            lines = [
                line
                for line in done.stderr.decode("utf-8", "replace").splitlines()
                if line.strip() and not line.startswith(_NOISE)
            ]
            said = lines[-1][:300] if lines else f"exit {done.returncode}"
            raise InputError(
                f"{self.source}: Host {name}: {said}",
                hint=f"`ssh -G {name}` shows the same; fix the SSH configuration or set ssh_config",
            )
        return parse_ssh_g(done.stdout.decode("utf-8", "replace"))

    def baseline(self) -> dict[str, list[str]]:
        """OpenSSH's defaults (no configuration file at all), for telling set values apart."""
        if self._baseline is None:
            self._baseline = self._options("envctl-defaults.invalid", os.devnull)
        return self._baseline

    def __call__(self, name: str) -> SshSettings:
        with self._lock:
            found = self._cache.get(name)
        if found is None:
            options = self._options(name, None if self.config is None else str(self.config))
            found = from_openssh(name, options, self.baseline(), self.source)
            with self._lock:
                self._cache[name] = found
        return found

    def prefetch(self, names: Iterable[str]) -> None:
        """Resolve many hosts at once (``PARALLEL`` ssh processes); errors surface on lookup."""
        todo = [n for n in dict.fromkeys(names) if n not in self._cache]
        if len(todo) < 2:
            return
        self.baseline()

        def one(name: str) -> None:
            with contextlib.suppress(InputError):  # raised again, in order, when the parser asks
                self(name)

        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(one, todo))


class ParamikoLookup:
    """paramiko's parse of the configuration files (no Include: reported per host)."""

    def __init__(self, texts: list[tuple[str, str]], source: str) -> None:
        import paramiko

        self.source = source
        # OpenSSH reads the user's file, then the system's, first value wins: one text, where
        # the system part starts again with every host (a Host * line), does the same
        text = "\nHost *\n".join(body for _, body in texts)
        try:
            self._config = paramiko.SSHConfig.from_text(text)
        except Exception as exc:  # paramiko raises several types for lines it cannot parse
            raise InputError(f"{source}: cannot read ssh config: {str(exc)[:300]}") from exc

    def __call__(self, name: str) -> SshSettings:
        try:
            found: dict[str, Any] = dict(self._config.lookup(name))
        except Exception as exc:  # paramiko raises several types for bad Match lines
            raise InputError(f"{self.source}: Host {name}: {str(exc)[:300]}") from exc
        return from_paramiko(name, found, self.source)

    def prefetch(self, names: Iterable[str]) -> None:
        """Nothing to do ahead: paramiko looks up in memory."""


Lookup = OpenSshLookup | ParamikoLookup


def ssh_lookup(config: Path | None) -> Lookup | None:
    """The lookup for ``config`` (None: the user's and the system's default files).

    ``ssh -G`` when OpenSSH's ``ssh`` is on PATH, else paramiko; None when there is no file.
    """
    ssh = shutil.which("ssh")
    if ssh is not None:
        if config is not None and not config.is_file():
            raise InputError(f"{config}: no such ssh config", hint='fix defaults.ssh_config, or "" for none')
        return OpenSshLookup(ssh, config)
    paths = [config] if config is not None else [Path(os.path.expanduser(USER_CONFIG)), Path(SYSTEM_CONFIG)]
    texts = [(str(p), _read(p)) for p in paths if p.is_file()]
    if not texts:
        if config is not None:
            raise InputError(f"{config}: no such ssh config", hint='fix defaults.ssh_config, or "" for none')
        return None
    return ParamikoLookup(texts, " + ".join(name for name, _ in texts))
