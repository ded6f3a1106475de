"""Make root filesystems for base images: debootstrap from Debian's archive, or static busybox."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from envctl.errors import BuildError, BuildFailure

DEBOOTSTRAP_TIMEOUT_S = 900
#: paths that only describe the machine that built the rootfs
_SCRUB = ("var/cache/apt/archives", "var/lib/apt/lists", "var/log", "var/cache/debconf", "tmp")


def debootstrap(root: Path, suite: str, variant: str, include: list[str], mirror: str) -> None:
    """``debootstrap --variant=V --include=A,B SUITE ROOT MIRROR`` then scrub build-only files."""
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed", hint="apt-get install debootstrap")
    command = ["debootstrap", f"--variant={variant}"]
    if include:
        command.append("--include=" + ",".join(include))
    command += [suite, str(root), mirror]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildFailure(f"debootstrap {suite}: timed out after {exc.timeout}s") from exc
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BuildFailure(f"debootstrap {suite} failed: {tail[0]}", hint=f"check {mirror}")
    for relative in _SCRUB:
        directory = root / relative
        if directory.is_dir():
            for child in directory.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


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
