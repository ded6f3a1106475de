"""Make root filesystems for base images: debootstrap from Debian's archive, or static busybox."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from envctl.errors import BuildError, BuildFailure

DEBOOTSTRAP_TIMEOUT_S = 900
#: paths that only describe the machine that built the rootfs
_SCRUB = ("var/cache/apt/archives", "var/lib/apt/lists", "var/log", "var/cache/debconf", "tmp")


def debootstrap(
    root: Path,
    suite: str,
    variant: str,
    include: list[str],
    mirror: str,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """``debootstrap --variant=V --include=A,B SUITE ROOT MIRROR`` then scrub build-only files.

    Each line debootstrap prints ("I: Retrieving libc6 2.36-9", ...) goes to ``on_line`` as it comes.
    """
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed", hint="apt-get install debootstrap")
    command = ["debootstrap", f"--variant={variant}"]
    if include:
        command.append("--include=" + ",".join(include))
    command += [suite, str(root), mirror]
    code, tail, timed_out = _stream(command, DEBOOTSTRAP_TIMEOUT_S, on_line or (lambda line: None))
    if timed_out:
        raise BuildFailure(f"debootstrap {suite}: timed out after {DEBOOTSTRAP_TIMEOUT_S}s")
    if code != 0:
        raise BuildFailure(f"debootstrap {suite} failed: {tail or 'no output'}", hint=f"check {mirror}")
    for relative in _SCRUB:
        directory = root / relative
        if directory.is_dir():
            for child in directory.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def _stream(argv: list[str], timeout: float, on_line: Callable[[str], None]) -> tuple[int, str, bool]:
    """Run ``argv`` (stderr merged into stdout), handing over each line; (exit code, last
    non-empty line, whether it was killed for running past ``timeout``)."""
    # its own process group: debootstrap's children (dpkg in the chroot) go down with it
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.start()
    last = ""
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            if line:
                last = line
                on_line(line)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:  # on_line raised (Ctrl-C, a reporter's error): stop it too
            kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    return code, last, fired.is_set()


def busybox(root: Path) -> None:
    """A rootfs of static busybox with one symlink per applet."""
    binary = shutil.which("busybox")
    if binary is None:
        raise BuildError("busybox is not installed", hint="apt-get install busybox-static")
    for directory in ("bin", "etc", "tmp", "root", "usr/bin"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, root / "bin" / "busybox")
    listing = subprocess.run([binary, "--list"], capture_output=True, text=True, timeout=30, check=True)
    for applet in sorted(set(listing.stdout.split())):
        if applet != "busybox" and "/" not in applet:
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
