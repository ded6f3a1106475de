"""Local system commands for the sandbox (ip, tc, ssh-keygen, nsenter) and process handling.

Every command runs from an argv list with a timeout; failures become SandboxError naming the
command and its stderr. Every wait here is bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from envctl.core.names import decimal
from envctl.errors import SandboxError

RUN_TIMEOUT_S = 30.0


def run(argv: Sequence[str], *, check: bool = True, timeout: float = RUN_TIMEOUT_S) -> str:
    """Run a local command; return its stdout; raise SandboxError if it fails (with ``check``)."""
    shown = " ".join(argv)
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise SandboxError(f"`{argv[0]}` is not installed", hint="see `envctl sandbox up --help`") from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"`{shown}` did not finish within {timeout:g}s") from exc
    if check and done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SandboxError(f"`{shown}` failed ({done.returncode}): {reason}")
    return done.stdout


def require_tools(tools: Iterable[str]) -> None:
    """Fail with one message listing every missing program."""
    missing = [tool for tool in tools if shutil.which(tool) is None and not os.path.exists(tool)]
    if missing:
        raise SandboxError(
            f"missing programs: {', '.join(missing)}",
            hint="apt-get install openssh-server iproute2 util-linux (and docker.io for docker)",
        )


def netns_exists(name: str) -> bool:
    """Whether ``ip netns`` knows the namespace."""
    return Path("/var/run/netns", name).exists()


def link_exists(name: str) -> bool:
    """Whether a network interface of that name exists in this namespace."""
    return Path("/sys/class/net", name).exists()


def netns_pids(name: str) -> list[int]:
    """Processes whose network namespace is ``name`` (none if it does not exist)."""
    if not netns_exists(name):
        return []
    out = run(["ip", "netns", "pids", name], check=False)
    return [pid for word in out.split() if (pid := decimal(word)) is not None]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def read_pid(pidfile: str, expect: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and its cmdline mentions ``expect``."""
    try:
        pid = int(Path(pidfile).read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError, IndexError):
        return None
    return pid if expect in cmdline and alive(pid) else None


def stop(pids: Sequence[int], *, grace: float) -> list[int]:
    """SIGTERM ``pids``, wait up to ``grace`` seconds, then SIGKILL the rest; return survivors."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.05)
        pids = [pid for pid in pids if alive(pid)]
        if not pids:
            break
    return list(pids)


def wait_tcp(address: str, port: int, timeout: float) -> bool:
    """Wait until something accepts TCP connections on address:port (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_docker(sock: str, timeout: float) -> bool:
    """Wait until a Docker engine answers ``GET /_ping`` on its unix socket."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(2.0)
                conn.connect(sock)
                conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                if b"OK" in conn.recv(4096):
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def wait_gone(path: Path, timeout: float) -> bool:
    """Wait until ``path`` no longer exists (bounded by ``timeout``)."""
    return wait_for(lambda: not path.exists(), timeout)


def mounts_under(directory: str) -> list[str]:
    """Mount points at or below ``directory`` in this mount namespace, deepest first."""
    found = []
    root = directory.rstrip("/") + "/"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            target = line.split()[4].replace("\\040", " ")
            if target == directory or target.startswith(root):
                found.append(target)
    return sorted(found, key=len, reverse=True)


def spawn(argv: Sequence[str], log: str) -> subprocess.Popen[bytes]:
    """Start a daemon in its own session with output to ``log``; it outlives this process."""
    with open(log, "ab") as out:
        try:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise SandboxError(f"cannot start `{argv[0]}`: {exc}") from exc


def tail(path: str, lines: int = 3) -> str:
    """The last lines of a log file, joined on one line, for error messages."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())
