"""``envctl pack LOCK|IMAGE -o FILE``: the environment with its own interpreter, as one archive.

The image (an OCI layout, or one built from the lock first) is unpacked by the agent's own
unpacker (every entry resolved inside the tree, escapes refused), its environment is made
relocatable (``envctl.node.hostenv.pack_tree``) and written as tar.gz, zip or squashfs with fixed
times, owners and order: the same lock gives the same bytes. The archive's digest goes into the
ledger (``envctl history``).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from envctl.adapters import outputs
from envctl.adapters.blob_cache import BlobCache
from envctl.errors import BuildError, EnvctlError, InputError

RESULT_SCHEMA = "envctl.pack/1"
FORMATS = ("tar.gz", "zip", "squashfs")
#: the archive's first entry: what it holds (and how envctl knows an archive as its own output)
META = "envctl-pack.json"
ZIP_EPOCH = 315532800  # 1980-01-01, the earliest time a zip entry can hold


@dataclass(frozen=True)
class PackOptions:
    source: Path  # a lockfile, or an OCI layout directory
    output: Path
    format: str = "tar.gz"
    base: str | None = None  # building from a lock: as ``build --base``
    env_name: str | None = None
    force: bool = False


@dataclass(frozen=True)
class PackResult:
    output: str
    format: str
    sha256: str
    size: int
    files: int
    unpacked: int
    env_name: str
    python: str
    kind: str  # "venv" (the base's Python, carried along) or "conda"
    image_digest: str
    built: bool  # the image was built from a lock first
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, schema ``envctl.pack/1``."""
        return {"schema": RESULT_SCHEMA, **self.__dict__, "seconds": round(self.seconds, 3)}


def _head_member(head: bytes) -> str | None:
    try:
        block = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 512)
        with tarfile.open(fileobj=__import__("io").BytesIO(block + b"\0" * 1024), mode="r:") as tar:
            first = tar.next()
            return first.name if first is not None else None
    except (zlib.error, tarfile.TarError, OSError, EOFError):
        return None


KINDS = {
    "tar.gz": outputs.FileKind(
        "pack-tar.gz", "an archive envctl pack wrote", lambda h: _head_member(h) == META
    ),
    "zip": outputs.FileKind(
        "pack-zip",
        "an archive envctl pack wrote",
        lambda h: h[:4] == b"PK\x03\x04" and h[30:46] == META.encode(),
    ),
    # a squashfs image has no room for a marker in its first bytes: its superblock is checked,
    # and its contents are listed below before it is replaced
    "squashfs": outputs.FileKind("pack-squashfs", "an image envctl pack wrote", lambda h: h[:4] == b"hsqs"),
}


def pack(options: PackOptions, cache: BlobCache) -> PackResult:
    """Write the archive; InputError (exit 2) for a bad lock, image or output, nothing half-written."""
    from envctl.adapters import ledger

    with ledger.recording("pack", str(options.source)) as entry:
        result = _pack(options, cache)
        entry.update(
            subject="sha256:" + result.sha256,
            output=result.output,
            format=result.format,
            image=result.image_digest,
            env=result.env_name,
        )
        return result


def _check(options: PackOptions) -> None:
    if options.format not in FORMATS:
        raise InputError(f"--format {options.format}: not supported", hint="one of: " + ", ".join(FORMATS))
    outputs.check_file_target(options.output, KINDS[options.format], force=options.force)
    if options.format == "squashfs":
        if shutil.which("mksquashfs") is None:
            raise InputError(
                "--format squashfs: mksquashfs is not installed", hint="apt-get install squashfs-tools"
            )
        if options.output.exists() and not options.force and not _our_squashfs(options.output):
            raise InputError(
                f"-o {options.output}: exists and is not an image envctl pack wrote; refusing to replace it",
                hint="name a new file, or pass --force to replace it",
            )


def _our_squashfs(path: Path) -> bool:
    if path.stat().st_size == 0:
        return True
    proc = subprocess.run(["unsquashfs", "-cat", str(path), META], capture_output=True, check=False)
    return proc.returncode == 0 and proc.stdout.startswith(b'{"envctl":')


def _pack(options: PackOptions, cache: BlobCache) -> PackResult:
    from envctl.adapters.oci_layout import read_image
    from envctl.node import hostenv, unpack, unpack_policy

    started = time.monotonic()
    _check(options)
    with tempfile.TemporaryDirectory(prefix="pack-", dir=_scratch_dir(options.output)) as tmp:
        built = not options.source.is_dir()
        layout = _built_layout(options, cache, Path(tmp)) if built else options.source
        image = read_image(layout)
        labels = (image.config_document.get("config") or {}).get("Labels") or {}
        prefix = labels.get("dev.envctl.env.prefix")
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise InputError(
                f"{options.source}: not an envctl environment image (no dev.envctl.env.prefix label)",
                hint="pack a lock, or an image that envctl build wrote",
            )
        root = os.path.join(tmp, "root")
        try:
            unpack.unpack_layers([str(image.blob_path(layer.digest)) for layer in image.layers], root)
            facts = hostenv.inspect(root, prefix)
            env = os.path.join(tmp, "env")
            hostenv.pack_tree(root, facts, env)
        except (unpack_policy.UnpackError, hostenv.HostEnvError) as exc:
            raise InputError(
                f"{options.source}: {exc}", hint="pack an image that envctl build wrote from a lock"
            ) from None
        meta = {
            "envctl": RESULT_SCHEMA,
            "env": str(labels.get("dev.envctl.env.name", "")),
            "python": facts.version,
            "kind": facts.kind,
            "image": image.manifest.digest,
            "lock_hash": str(labels.get("dev.envctl.lock.hash", "")),
        }
        _write_file(Path(env, META), json.dumps(meta, sort_keys=True).encode() + b"\n")
        epoch = _epoch(image.config_document.get("created"))
        entries = list(_entries(env))
        archive = os.path.join(tmp, "archive")
        if options.format == "tar.gz":
            with open(archive, "wb") as fh:
                _write_tar(fh, env, entries, epoch)
        elif options.format == "zip":
            with open(archive, "wb") as fh:
                _write_zip(fh, env, entries, max(epoch, ZIP_EPOCH))
        else:
            _write_squashfs(env, archive, epoch)
        digest = hashlib.sha256()
        with (
            outputs.owned_file(options.output, KINDS[options.format], force=True) as out,
            open(archive, "rb") as src,
        ):
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        unpacked = sum(os.lstat(os.path.join(env, e)).st_size for e in entries)
        return PackResult(
            output=str(options.output),
            format=options.format,
            sha256=digest.hexdigest(),
            size=os.path.getsize(archive),
            files=len(entries),
            unpacked=unpacked,
            env_name=meta["env"],
            python=facts.version,
            kind=facts.kind,
            image_digest=image.manifest.digest,
            built=built,
            seconds=time.monotonic() - started,
        )


def _scratch_dir(output: Path) -> str | None:
    """Temporary trees beside the output's file system when possible (the archive is moved there)."""
    parent = output.resolve().parent
    return str(parent) if parent.is_dir() and os.access(parent, os.W_OK) else None


def _built_layout(options: PackOptions, cache: BlobCache, tmp: Path) -> Path:
    from envctl.services.build.build import build_image
    from envctl.services.build.model import BuildOptions

    if not options.source.is_file():
        raise InputError(f"{options.source}: no such lockfile or OCI layout directory")
    layout = tmp / "image"
    try:
        build_image(
            BuildOptions(lock=options.source, base=options.base, output=layout, env_name=options.env_name),
            cache,
        )
    except EnvctlError:
        raise
    except (OSError, ValueError) as exc:
        raise BuildError(f"{options.source}: build failed: {exc}") from exc
    return layout


def _epoch(created: Any) -> int:
    """The image's ``created`` time: the lock's, so every entry's time is the same on every pack."""
    try:
        return int(
            dt.datetime.strptime(str(created), "%Y-%m-%dT%H:%M:%SZ")
            .replace(tzinfo=dt.timezone.utc)
            .timestamp()
        )
    except ValueError:
        return 0


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as fh:
        fh.write(data)


def _entries(top: str) -> Iterator[str]:
    """Every entry under ``top`` (relative, sorted, directories before their contents), META first."""
    yield META
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel = os.path.relpath(dirpath, top)
        for name in sorted(dirnames + [f for f in filenames if not (rel == "." and f == META)]):
            path = os.path.join(dirpath, name)
            if name in dirnames and os.path.islink(path):
                dirnames.remove(name)  # os.walk lists a link to a directory among the directories
            yield os.path.normpath(os.path.join(rel, name))


def _mode(st: os.stat_result) -> int:
    return stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID)


def _write_tar(fh: IO[bytes], top: str, entries: list[str], epoch: int) -> None:
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in entries:
            path = os.path.join(top, name)
            st = os.lstat(path)
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = epoch, _mode(st), 0, 0, "", ""
            if stat.S_ISLNK(st.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
                tar.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                with open(path, "rb") as src:
                    tar.addfile(info, src)


def _write_zip(fh: IO[bytes], top: str, entries: list[str], epoch: int) -> None:
    when = time.gmtime(epoch)[:6]
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in entries:
            path = os.path.join(top, name)
            st = os.lstat(path)
            is_dir = stat.S_ISDIR(st.st_mode)
            info = zipfile.ZipInfo(name + ("/" if is_dir else ""), date_time=when)  # type: ignore[arg-type]
            info.create_system = 3  # unix: the mode below is honoured by unzip
            info.external_attr = (stat.S_IFMT(st.st_mode) | _mode(st)) << 16
            if stat.S_ISLNK(st.st_mode):
                zf.writestr(info, os.readlink(path), compress_type=zipfile.ZIP_STORED)
            elif is_dir:
                zf.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
            elif stat.S_ISREG(st.st_mode):
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(path, "rb") as src, zf.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)


def _write_squashfs(top: str, archive: str, epoch: int) -> None:
    # fixed times and owners, no xattrs: mksquashfs (4.4 and later) is then reproducible
    argv = ["mksquashfs", top, archive, "-noappend", "-all-root", "-no-xattrs", "-no-progress", "-quiet"]
    argv += ["-mkfs-time", str(epoch), "-all-time", str(epoch)]
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["(no output)"]
        raise BuildError(f"mksquashfs failed: {lines[-1][:300]}")
