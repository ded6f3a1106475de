"""Host-runnable environments: an image's Python run from the host, without root or chroot.

Standard library only: the agent writes a *host view* into every prefix tree it unpacks from an
envctl image, and ``envctl pack`` writes a relocatable copy of the same environment.

The environment keeps its own interpreter. A venv over the base's Debian Python is started by
the image's own dynamic loader with the image's libraries first (``ld.so --library-path ...
--argv0 VIEW/bin/python``), so neither the host's glibc nor its Python is used, while the host's
GPUs, driver libraries (found through the host's ``ld.so.cache`` after the image's own), home
directories, working directory and network are all there: nothing is namespaced. A conda
Python is relocatable by itself and runs as it is. Console scripts become ``/bin/sh`` polyglots
(distlib's ``'''exec'`` trick) that hand the script to the view's Python, so no shebang carries a
long path.

    TREE/.envctl-host/bin/python        sh launcher (absolute paths into TREE)
    TREE/.envctl-host/bin/SCRIPT        the env's console scripts, started by that python
    TREE/.envctl-host/pyvenv.cfg        home = TREE/usr/bin: sys.prefix is the view
    TREE/.envctl-host/lib -> ../opt/envctl/envs/NAME/lib     the env's site-packages

The relocatable form (``pack_tree``) computes every path from where its launcher lies.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import stat
import struct
from collections import deque
from dataclasses import dataclass

VIEW = ".envctl-host"
MAX_HOPS = 40
#: paths baked into launchers: no quote, colon (the library path's separator) or newline
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/@+,=-]*")
#: after the image's own libraries: the host's LD_LIBRARY_PATH (a driver or module directory);
#: the host's ld.so.cache (its libcuda) comes after both, read by the image's loader itself
HOST_LIBS = '"${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"'
_TRIPLETS = {"ld-linux-x86-64.so.2": "x86_64-linux-gnu", "ld-linux-aarch64.so.1": "aarch64-linux-gnu"}


class HostEnvError(Exception):
    """The tree holds no environment that can be made host-runnable (the message says why)."""


@dataclass(frozen=True)
class EnvFacts:
    """An environment in an unpacked image, every path relative to the tree's root."""

    kind: str  # "venv": on the base's Python; "conda": the env's own python
    prefix: str  # "opt/envctl/envs/NAME"
    version: str  # "3.11"
    exe: str  # the interpreter's real file, "usr/bin/python3.11"
    loader: str | None  # the image's dynamic loader (venv), "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    libdirs: tuple[str, ...]  # the image's library directories, in search order (venv)
    scripts: tuple[str, ...]  # names in PREFIX/bin that are Python scripts of the env


def resolve(root: str, path: str) -> str:
    """``path`` resolved inside ``root`` as a chroot would (absolute link targets mean the tree's);
    the result is relative to ``root`` and names no symlink. HostEnvError if it does not exist."""
    parts = deque(path.split("/"))
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        full = os.path.join(root, *done, part)
        try:
            st = os.lstat(full)
        except OSError:
            raise HostEnvError(f"/{'/'.join([*done, part])} does not exist in the image") from None
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_HOPS:
                raise HostEnvError(f"/{path.lstrip('/')}: too many levels of symbolic links")
            target = os.readlink(full)
            if target.startswith("/"):
                done = []
            parts.extendleft(reversed(target.split("/")))
        else:
            done.append(part)
    return "/".join(done)


def elf_interpreter(path: str) -> str | None:
    """The PT_INTERP of the ELF file at ``path`` (its dynamic loader), None if it has none."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        if len(head) < 52 or head[:4] != b"\x7fELF" or head[4] not in (1, 2):
            return None
        order = "<" if head[5] == 1 else ">"
        wide = head[4] == 2
        phoff = struct.unpack_from(order + ("Q" if wide else "I"), head, 32 if wide else 28)[0]
        entsize, count = struct.unpack_from(order + "HH", head, 54 if wide else 42)
        for i in range(min(count, 128)):
            fh.seek(phoff + i * entsize)
            ph = fh.read(entsize)
            if len(ph) < (56 if wide else 32) or struct.unpack_from(order + "I", ph, 0)[0] != 3:
                continue
            if wide:
                offset, size = (
                    struct.unpack_from(order + "Q", ph, 8)[0],
                    struct.unpack_from(order + "Q", ph, 32)[0],
                )
            else:
                offset, size = (
                    struct.unpack_from(order + "I", ph, 4)[0],
                    struct.unpack_from(order + "I", ph, 16)[0],
                )
            fh.seek(offset)
            return fh.read(min(size, 4096)).rstrip(b"\0").decode("utf-8", "replace")
    return None


def _ld_conf_dirs(root: str) -> list[str]:
    """Directories the image's ``/etc/ld.so.conf`` (and ``ld.so.conf.d/*.conf``) names, in order."""
    found: list[str] = []
    files = ["etc/ld.so.conf"]
    with contextlib.suppress(HostEnvError, OSError):
        conf_d = resolve(root, "etc/ld.so.conf.d")
        files += [
            f"{conf_d}/{n}" for n in sorted(os.listdir(os.path.join(root, conf_d))) if n.endswith(".conf")
        ]
    for name in files[:64]:
        try:
            with open(os.path.join(root, resolve(root, name)), encoding="utf-8", errors="replace") as fh:
                lines = fh.read(1 << 16).splitlines()
        except (HostEnvError, OSError):
            continue
        found += [line.split("#")[0].strip() for line in lines if line.strip().startswith("/")]
    return found


def _is_dir(root: str, rel: str) -> bool:
    return os.path.isdir(os.path.join(root, rel)) and not os.path.islink(os.path.join(root, rel))


def inspect(root: str, prefix: str) -> EnvFacts:
    """What the environment at ``prefix`` (its path in the image) of the tree ``root`` is made of."""
    env = resolve(root, prefix)
    if not _is_dir(root, env):
        raise HostEnvError(f"{prefix} is not a directory in the image")
    venv = os.path.isfile(os.path.join(root, env, "pyvenv.cfg"))
    try:
        exe = resolve(root, f"{env}/bin/python")
    except HostEnvError as exc:
        raise HostEnvError(f"{prefix}/bin/python: {exc}") from None
    if not os.path.isfile(os.path.join(root, exe)):
        raise HostEnvError(f"{prefix}/bin/python is not a file in the image")
    match = re.search(r"python(\d+\.\d+)$", exe)
    if match is None:
        raise HostEnvError(f"{prefix}/bin/python leads to /{exe}, not to a python3.X")
    loader: str | None = None
    libdirs: tuple[str, ...] = ()
    if venv:
        interp = elf_interpreter(os.path.join(root, exe))
        if interp is None:
            raise HostEnvError(f"/{exe} is not a dynamically linked ELF program")
        loader = resolve(root, interp)
        triplet = _TRIPLETS.get(os.path.basename(interp), "")
        wanted = [os.path.dirname(loader), *_ld_conf_dirs(root)]
        wanted += [f"{d}/{triplet}" for d in ("lib", "usr/lib") if triplet] + ["lib", "usr/lib"]
        dirs: list[str] = []
        for d in wanted:
            with contextlib.suppress(HostEnvError):
                real = resolve(root, d)
                if real not in dirs and _is_dir(root, real):
                    dirs.append(real)
        libdirs = tuple(dirs)
    return EnvFacts(
        kind="venv" if venv else "conda",
        prefix=env,
        version=match.group(1),
        exe=exe,
        loader=loader,
        libdirs=libdirs,
        scripts=tuple(_scripts(root, env, "/" + prefix.strip("/"))),
    )


def _scripts(root: str, env: str, prefix: str) -> list[str]:
    """Regular files in ``env/bin`` whose shebang names the environment's python."""
    names = []
    where = os.path.join(root, env, "bin")
    for name in sorted(os.listdir(where)) if _is_dir(root, f"{env}/bin") else []:
        path = os.path.join(where, name)
        if name.startswith("python") or not stat.S_ISREG(os.lstat(path).st_mode):
            continue
        with open(path, "rb") as fh:
            first = fh.readline(4096)
        if first.startswith(b"#!") and f"{prefix}/bin/python".encode() in first:
            names.append(name)
    return names


def _checked(path: str) -> str:
    if not _SAFE_PATH.fullmatch(path):
        raise HostEnvError(f"{path[:200]!r}: a launcher path may hold only letters, digits and ._/@+,=-")
    return path


def _safe(path: str) -> str:
    return shlex.quote(_checked(path))


def _write(path: str, text: str | bytes, mode: int = 0o644) -> None:
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def _polyglot(python: str, original: bytes) -> bytes:
    """The script ``original`` with its shebang replaced: sh execs ``python`` on the file itself,
    Python reads the ``'''exec'`` line as a string (distlib's launcher header)."""
    body = original.split(b"\n", 1)[1] if b"\n" in original else b""
    return f"#!/bin/sh\n'''exec' {python} \"$0\" \"$@\"\n' '''\n".encode() + body


def _launcher(loader: str, libpath: str, argv0: str, exe: str) -> str:
    return (
        "#!/bin/sh\n"
        "# envctl: the environment's own Python through the image's own loader and libraries\n"
        f'exec {loader} --library-path {libpath}{HOST_LIBS} --argv0 {argv0} {exe} "$@"\n'
    )


def write_view(root: str, facts: EnvFacts, final_root: str) -> str:
    """Write ``root/.envctl-host`` for a tree that will live at ``final_root`` (its paths are
    baked in: the tree of one digest never moves). Replaces a ``.envctl-host`` the image carried."""
    view = os.path.join(root, VIEW)
    if os.path.lexists(view):
        _remove(view)
    final_view = f"{final_root}/{VIEW}"
    bin_dir = os.path.join(view, "bin")
    os.makedirs(bin_dir, mode=0o755)
    os.chmod(view, 0o755)
    python = _safe(f"{final_view}/bin/python")
    if facts.kind == "venv":
        assert facts.loader is not None
        libpath = ":".join(_checked(f"{final_root}/{d}") for d in facts.libdirs)
        _write(
            os.path.join(bin_dir, "python"),
            _launcher(
                _safe(f"{final_root}/{facts.loader}"),
                shlex.quote(libpath),
                python,
                _safe(f"{final_root}/{facts.exe}"),
            ),
            0o755,
        )
        home = f"{final_root}/{os.path.dirname(facts.exe)}"
        _write(
            os.path.join(view, "pyvenv.cfg"),
            f"home = {home}\ninclude-system-site-packages = false\nversion = {facts.version}\n"
            f"executable = {final_root}/{facts.exe}\n",
        )
        lib = resolve(root, f"{facts.prefix}/lib")  # a link the image made stays inside the tree
        os.symlink(os.path.relpath(os.path.join(root, lib), view), os.path.join(view, "lib"))
    else:
        _write(
            os.path.join(bin_dir, "python"),
            f'#!/bin/sh\nexec {_safe(f"{final_root}/{facts.exe}")} "$@"\n',
            0o755,
        )
    for alias in (f"python{facts.version.split('.')[0]}", f"python{facts.version}"):
        os.symlink("python", os.path.join(bin_dir, alias))
    for name in facts.scripts:
        with open(os.path.join(root, facts.prefix, "bin", name), "rb") as fh:
            _write(os.path.join(bin_dir, name), _polyglot(python, fh.read()), 0o755)
    return view


def pack_tree(root: str, facts: EnvFacts, out: str) -> None:
    """Write into the new directory ``out`` a relocatable copy of the environment.

    venv: a flat prefix that Python finds from where it is started, wherever it is unpacked:
    ``bin/python`` (launcher), ``libexec/pythonX.Y``, ``lib`` (the image's ``/usr/lib``:
    stdlib, the loader, the libraries), ``lib/envctl/N`` (other library directories), and the
    env's packages in ``local/lib/pythonX.Y/dist-packages`` (Debian's first site directory).
    conda: the env's prefix as it is. Console scripts become relocatable polyglots either way.
    """
    os.makedirs(out, mode=0o755)
    here = '"$(dirname -- "$(readlink -f -- "$0")")/python"'
    if facts.kind == "conda":
        _copy(os.path.join(root, facts.prefix), out)
        for name in facts.scripts:
            path = os.path.join(out, "bin", name)
            with open(path, "rb") as fh:
                data = fh.read()
            os.unlink(path)
            _write(path, _polyglot(here, data), 0o755)
        return
    assert facts.loader is not None
    usr_lib = resolve(root, "usr/lib")
    _copy(os.path.join(root, usr_lib), os.path.join(out, "lib"))
    dirs: list[str] = []
    for i, d in enumerate(facts.libdirs):
        if d == usr_lib or d.startswith(usr_lib + "/"):
            dirs.append("lib" + d[len(usr_lib) :])
        else:
            _copy(os.path.join(root, d), os.path.join(out, "lib", "envctl", str(i)))
            dirs.append(f"lib/envctl/{i}")
    if not facts.loader.startswith(usr_lib + "/"):
        raise HostEnvError(f"the image's loader /{facts.loader} lies outside /usr/lib")
    os.makedirs(os.path.join(out, "libexec"), mode=0o755)
    shutil.copy2(os.path.join(root, facts.exe), os.path.join(out, "libexec", f"python{facts.version}"))
    site = os.path.join(out, "local", "lib", f"python{facts.version}")
    os.makedirs(site, mode=0o755)
    _copy(
        os.path.join(root, resolve(root, f"{facts.prefix}/lib/python{facts.version}/site-packages")),
        site + "/dist-packages",
    )
    bin_dir = os.path.join(out, "bin")
    os.makedirs(bin_dir, mode=0o755)
    libpath = ":".join(f'"$d"/{d}' for d in dirs)
    loader = '"$d"/lib' + facts.loader[len(usr_lib) :]
    _write(
        os.path.join(bin_dir, "python"),
        "#!/bin/sh\n"
        "# envctl pack: the environment's own Python, loader and libraries, wherever it lies\n"
        'me=$(readlink -f -- "$0") || exit 127\n'
        "d=${me%/bin/*}\n"
        f'exec {loader} --library-path {libpath}{HOST_LIBS} --argv0 "$d"/bin/python'
        f' "$d"/libexec/python{facts.version} -s "$@"\n',
        0o755,
    )
    for alias in (f"python{facts.version.split('.')[0]}", f"python{facts.version}"):
        os.symlink("python", os.path.join(bin_dir, alias))
    for name in facts.scripts:
        with open(os.path.join(root, facts.prefix, "bin", name), "rb") as fh:
            _write(os.path.join(bin_dir, name), _polyglot(here, fh.read()), 0o755)
    moved = {"/" + usr_lib: "lib"}
    with contextlib.suppress(HostEnvError):
        if resolve(root, "lib") == usr_lib:
            moved["/lib"] = "lib"
    _localise_links(out, moved)


def _localise_links(out: str, moved: dict[str, str]) -> None:
    """Absolute links of the image (``/usr/lib/...``) point into the pack instead; a link that
    would lead out of it (to the host's files, wherever it is unpacked) is dropped."""
    top = os.path.realpath(out)
    for dirpath, dirnames, filenames in os.walk(out):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
            if target.startswith("/"):
                os.unlink(path)
                for old, new in moved.items():
                    if target == old or target.startswith(old + "/"):
                        local = os.path.join(out, new + target[len(old) :])
                        os.symlink(os.path.relpath(local, dirpath), path)
                        break
            elif not os.path.normpath(os.path.join(os.path.realpath(dirpath), target)).startswith(top + "/"):
                os.unlink(path)


def _copy(src: str, dst: str) -> None:
    """Copy a tree without following any symlink (links are copied as links)."""
    shutil.copytree(src, dst, symlinks=True)


def _remove(path: str) -> None:
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
    else:
        shutil.rmtree(path)
