"""Fresh Debian roots for the bootstrap tests: debootstrap from Debian's archive, cached as tarballs.

A root is ``debootstrap --variant=minbase --include=openssh-server RELEASE``: no python3, no sudo,
but sshd and its host keys, like a node fresh from a minimal install. Building one takes about a
minute, so each release's tarball is kept under ``$ENVCTL_TEST_CACHE`` (default
/var/cache/envctl-tests) and reused; every test unpacks its own copy into its temporary directory.
The .deb files apt fetches inside a root are cached beside it (bind-mounted over the root's
/var/cache/apt/archives, in a private mount namespace), so a warm run downloads only the lists.

Scripts run inside a root with ``chroot`` in a private mount namespace (``unshare -m``) that has
the root's /proc and /dev mounted: those mounts end with the namespace, nothing is left behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

MIRROR = "http://deb.debian.org/debian"
INCLUDE = "openssh-server"
CACHE = Path(os.environ.get("ENVCTL_TEST_CACHE", "/var/cache/envctl-tests"))
TOOLS = ("debootstrap", "unshare", "chroot", "mount", "tar", "shellcheck", "ssh-keygen")
#: skipped by the file comparison: kernel file systems and scratch space, not the root's files
VOLATILE = ("proc", "dev", "sys", "run", "tmp")
#: the namespace's mounts, then ``chroot ROOT sh -c RUN_FROM_FILE envctl-bootstrap ARGS``
_ENTER = (
    'R=$1; A=$2; shift 2; mount -t proc proc "$R/proc" && mount --bind /dev "$R/dev" '
    '&& mount --bind "$A" "$R/var/cache/apt/archives" && exec chroot "$R" "$@"'
)


def require_components() -> None:
    """Fail (never skip) without root or the tools."""
    if os.geteuid() != 0:
        pytest.fail("the bootstrap tests need root (chroot, mounts)")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install debootstrap shellcheck openssh-client")


def tarball(release: str) -> Path:
    """The cached root of ``release`` (built once, under a lock, when absent)."""
    directory = CACHE / "debootstrap"
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{release}-minbase-{INCLUDE}.tar"
    with open(directory / f".{release}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.is_file():
            return out
        work = directory / f".{release}.build"
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=True)
        cmd = ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", release, str(work), MIRROR]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            pytest.fail(f"debootstrap {release} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        tmp = out.with_suffix(".tmp")
        subprocess.run(["tar", "-C", str(work), "--numeric-owner", "-cf", str(tmp), "."], check=True)
        os.replace(tmp, out)
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=True)
    return out


@dataclass(frozen=True)
class Root:
    """One unpacked root of ``release`` at ``path``."""

    release: str
    path: Path

    @property
    def apt_cache(self) -> Path:
        """The shared cache of .deb files this release's roots download into."""
        path = CACHE / "apt" / self.release
        (path / "partial").mkdir(parents=True, exist_ok=True)
        return path

    def argv(self, *command: str) -> list[str]:
        """``command`` run inside the root, in a private mount namespace."""
        enter = ["unshare", "-m", "--propagation", "private", "sh", "-c", _ENTER, "enter"]
        return [*enter, str(self.path), str(self.apt_cache), *command]

    def run(
        self, *command: str, stdin: bytes | None = None, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` inside the root; its status and output (text)."""
        done = subprocess.run(self.argv(*command), input=stdin, capture_output=True, timeout=timeout)
        return subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )

    def bootstrap(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        """The script run the way ``envctl bootstrap -i`` runs it (from a temporary file)."""
        from envctl.services.bootstrap.run import _RUN_FROM_FILE

        return self.run("sh", "-c", _RUN_FROM_FILE, "envctl-bootstrap", *args, stdin=script.encode())

    def snapshot(self) -> dict[str, tuple[int, ...]]:
        """Every path of the root with what a change would move: type, mode, owner, size, times."""
        seen: dict[str, tuple[int, ...]] = {}
        for top, dirs, files in os.walk(self.path):
            rel = os.path.relpath(top, self.path)
            if rel == ".":
                dirs[:] = [d for d in dirs if d not in VOLATILE]
            for name in [*dirs, *files]:
                st = os.lstat(os.path.join(top, name))
                seen[os.path.join(rel, name)] = (
                    st.st_mode,
                    st.st_uid,
                    st.st_gid,
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ctime_ns,
                    st.st_ino,
                )
        return seen

    def remove(self) -> None:
        """Delete the unpacked root (its mounts ended with their namespace)."""
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.path)], check=True, timeout=300)


def unpack(release: str, directory: Path) -> Root:
    """A fresh copy of the cached root of ``release`` in ``directory``."""
    require_components()
    source = tarball(release)
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-C", str(directory), "--numeric-owner", "-xpf", str(source)], check=True)
    os.chmod(directory, 0o755)  # debootstrap's target was a private temporary directory
    return Root(release, directory)


def changed_paths(before: dict[str, tuple[int, ...]], after: dict[str, tuple[int, ...]]) -> list[str]:
    """Paths added, removed or touched between two snapshots."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
