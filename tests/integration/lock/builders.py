"""Builders for real test artefacts: wheels, PEP 503 simple indexes and conda channels.

The wheels are genuine (dist-info, RECORD, zip) stand-ins named like the real projects, so uv
reads their metadata and tags exactly as it would read torch's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from packaging.utils import canonicalize_name

DEFAULT_UPLOAD_TIME = "2024-06-01T00:00:00.000000Z"


@dataclass(frozen=True)
class WheelSpec:
    name: str
    version: str
    tags: str = "py3-none-any"  # "py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64"
    requires: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(spec: WheelSpec, out_dir: Path) -> Path:
    """Write one real wheel file into ``out_dir`` and return its path."""
    dist = spec.name.replace("-", "_")
    module = dist.lower()
    dist_info = f"{dist}-{spec.version}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {spec.name}",
        f"Version: {spec.version}",
        *(f"Provides-Extra: {extra}" for extra in spec.extras),
        *(f"Requires-Dist: {req}" for req in spec.requires),
    ]
    root_is_purelib = "true" if spec.tags.endswith("-any") else "false"
    wheel_meta = [
        "Wheel-Version: 1.0",
        "Generator: envctl-tests",
        f"Root-Is-Purelib: {root_is_purelib}",
        *(f"Tag: {tag}" for tag in _expand_tags(spec.tags)),
    ]
    files = {
        f"{module}/__init__.py": f'__version__ = "{spec.version}"\n'.encode(),
        f"{dist_info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{dist_info}/WHEEL": ("\n".join(wheel_meta) + "\n").encode(),
    }
    record_lines = [f"{name},{_record_hash(data)},{len(data)}" for name, data in files.items()]
    record_lines.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{dist}-{spec.version}-{spec.tags}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    return path


def _expand_tags(tags: str) -> list[str]:
    py, abi, plats = tags.split("-")
    return [f"{p}-{a}-{plat}" for p in py.split(".") for a in abi.split(".") for plat in plats.split(".")]


def write_simple_index(
    wheels: Iterable[Path], root: Path, upload_times: dict[str, str] | None = None
) -> Path:
    """Lay wheels out as a simple index under ``root/<project>/``: PEP 503 HTML and, when
    ``upload_times`` is given (file name -> RFC 3339; default for others), PEP 691 JSON with
    upload times, like PyPI (uv's exclude-newer needs them)."""
    by_project: dict[str, list[Path]] = {}
    for wheel in wheels:
        project = canonicalize_name(wheel.name.split("-")[0])
        by_project.setdefault(project, []).append(wheel)
    root.mkdir(parents=True, exist_ok=True)
    for project, files in by_project.items():
        folder = root / project
        folder.mkdir(exist_ok=True)
        links = []
        for wheel in files:
            target = folder / wheel.name
            target.write_bytes(wheel.read_bytes())
            sha = hashlib.sha256(target.read_bytes()).hexdigest()
            href = html.escape(quote(wheel.name))
            links.append(f'<a href="{href}#sha256={sha}">{wheel.name}</a><br/>')
        (folder / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
        )
        if upload_times is not None:
            files_json = [
                {
                    "filename": wheel.name,
                    "url": wheel.name,
                    "hashes": {"sha256": hashlib.sha256((folder / wheel.name).read_bytes()).hexdigest()},
                    "upload-time": upload_times.get(wheel.name, DEFAULT_UPLOAD_TIME),
                }
                for wheel in files
            ]
            document = {"meta": {"api-version": "1.1"}, "name": project, "files": files_json}
            (folder / "index.json").write_text(json.dumps(document))
    (root / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n"
        + "\n".join(f'<a href="{p}/">{p}</a><br/>' for p in sorted(by_project))
        + "\n</body></html>\n"
    )
    return root


class IndexHandler(http.server.SimpleHTTPRequestHandler):
    """Static files; a project folder answers with PEP 691 JSON when it has one and it is asked."""

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        wants_json = "application/vnd.pypi.simple.v1+json" in self.headers.get("Accept", "")
        if path.is_dir() and wants_json and (path / "index.json").is_file():
            data = (path / "index.json").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return io.BytesIO(data)
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) with IndexHandler; yields the base URL."""
    handler = lambda *a, **kw: IndexHandler(*a, directory=str(directory), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="lk-index", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class CondaSpec:
    name: str
    version: str
    build: str = "0"
    subdir: str = "noarch"
    depends: tuple[str, ...] = ()


def build_conda_package(spec: CondaSpec, channel: Path, work: Path) -> Path:
    """Build one real ``.conda`` package into ``channel/<subdir>/``."""
    from conda_package_handling import api

    prefix = work / f"{spec.name}-{spec.version}-{spec.build}-{spec.subdir}"
    (prefix / "info").mkdir(parents=True, exist_ok=True)
    payload = f"share/{spec.name}/VERSION"
    (prefix / payload).parent.mkdir(parents=True, exist_ok=True)
    (prefix / payload).write_text(spec.version + "\n")
    index = {
        "name": spec.name,
        "version": spec.version,
        "build": f"h0_{spec.build}",
        "build_number": int(spec.build),
        "depends": list(spec.depends),
        "subdir": spec.subdir,
        "license": "MIT",
        "timestamp": 1704067200000,
    }
    if spec.subdir == "noarch":
        index["noarch"] = "generic"
    (prefix / "info" / "index.json").write_text(json.dumps(index))
    (prefix / "info" / "files").write_text(payload + "\n")
    data = (prefix / payload).read_bytes()
    digest = hashlib.sha256(data).hexdigest()  # what an installer checks the file against
    paths = {
        "paths": [{"_path": payload, "path_type": "hardlink", "sha256": digest, "size_in_bytes": len(data)}],
        "paths_version": 1,
    }
    (prefix / "info" / "paths.json").write_text(json.dumps(paths))
    out = channel / spec.subdir
    out.mkdir(parents=True, exist_ok=True)
    file_name = f"{spec.name}-{spec.version}-h0_{spec.build}.conda"
    api.create(
        str(prefix),
        ["info/index.json", "info/files", "info/paths.json", payload],
        file_name,
        str(out),
    )
    return out / file_name


def build_channel(specs: Sequence[CondaSpec], channel: Path, work: Path) -> Path:
    """Build and index a local conda channel holding ``specs``."""
    import rattler.index

    for spec in specs:
        build_conda_package(spec, channel, work)
    for subdir in ("noarch", "linux-64", "linux-aarch64"):
        (channel / subdir).mkdir(parents=True, exist_ok=True)
    asyncio.run(rattler.index.index_fs(channel))
    return channel
