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
    arch: str | None = None,
) -> None:
    """``debootstrap --variant=V --include=A,B SUITE ROOT MIRROR`` then scrub build-only files.

    Each line debootstrap prints ("I: Retrieving libc6 2.36-9", ...) goes to ``on_line`` as it comes.
    A foreign ``arch`` (a Debian architecture other than this machine's) is debootstrapped
    ``--foreign`` and finished with ``--second-stage`` inside the root, its binaries run by
    qemu-user-static through binfmt_misc (``require_emulation`` checks that first).
    """
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed", hint="apt-get install debootstrap")
    foreign = arch is not None and arch != host_arch()
    if foreign:
        assert arch is not None
        require_emulation(arch)
    command = ["debootstrap", f"--variant={variant}"]
    if arch is not None:
        command.append(f"--arch={arch}")
    if foreign:
        command.append("--foreign")
    if include:
        command.append("--include=" + ",".join(include))
    command += [suite, str(root), mirror]
    lines = on_line or (lambda line: None)
    _run_stage(command, f"debootstrap {suite}", lines, hint=f"check {mirror}")
    if foreign:
        # its own mount namespace: the /proc and /sys the second stage mounts end with it
        second = ["unshare", "-m", "--propagation", "private", "chroot", str(root)]
        second += ["/debootstrap/debootstrap", "--second-stage"]
        _run_stage(second, f"debootstrap {suite} --second-stage ({arch})", lines, hint=EMULATION_HINT)
    for relative in _SCRUB:
        directory = root / relative
        if directory.is_dir():
            for child in directory.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def _run_stage(argv: list[str], what: str, on_line: Callable[[str], None], hint: str) -> None:
    code, tail, timed_out = _stream(argv, DEBOOTSTRAP_TIMEOUT_S, on_line)
    if timed_out:
        raise BuildFailure(f"{what}: timed out after {DEBOOTSTRAP_TIMEOUT_S}s")
    if code != 0:
        raise BuildFailure(f"{what} failed: {tail or 'no output'}", hint=hint)


#: Debian architecture -> the binfmt_misc entry Debian's qemu-user-static registers for it
QEMU_BINFMT = {"arm64": "qemu-aarch64", "amd64": "qemu-x86_64"}
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
EMULATION_HINT = (
    "apt-get install qemu-user-static binfmt-support, and mount binfmt_misc "
    "(mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"
)


def host_arch() -> str:
    """This machine's Debian (and OCI) architecture: amd64, arm64."""
    import platform

    from envctl.core.image_needs import UNAME

    machine = platform.machine()
    return next((arch for arch, names in UNAME.items() if machine in names), machine)


def require_emulation(arch: str) -> None:
    """BuildError unless binaries of ``arch`` run here (natively, or qemu through binfmt_misc)."""
    if arch == host_arch():
        return
    entry = QEMU_BINFMT.get(arch)
    if entry is None:
        raise BuildError(f"cannot run {arch} binaries on this machine", hint="one of: amd64, arm64")
    try:
        status = (BINFMT_DIR / entry).read_text()
    except OSError:
        raise BuildError(
            f"cannot run {arch} binaries on this machine: no binfmt_misc entry {entry}",
            hint=EMULATION_HINT,
        ) from None
    if not status.startswith("enabled"):
        raise BuildError(f"binfmt_misc entry {entry} is disabled", hint=f"echo 1 > {BINFMT_DIR / entry}")


def smoke_python(root: Path, arch: str) -> str:
    """Run the root's ``python3`` (under qemu for a foreign ``arch``); the machine it reports.

    BuildFailure when it does not run or reports another machine than ``arch``'s.
    """
    from envctl.core.image_needs import UNAME

    argv = ["chroot", str(root), "/usr/bin/python3", "-c", "import platform; print(platform.machine())"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildFailure(f"smoke check of the {arch} root: {exc}", hint=EMULATION_HINT) from exc
    machine = done.stdout.strip()
    if done.returncode != 0 or machine not in UNAME.get(arch, (arch,)):
        tail = (done.stderr.strip().splitlines() or [machine or "no output"])[-1]
        raise BuildFailure(f"smoke check of the {arch} root: python3 says {tail!r}", hint=EMULATION_HINT)
    return machine


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
