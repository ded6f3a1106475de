"""Session fixtures for the lock tests: real wheels on local indexes, a real conda channel.

Layout (all under one session tmp dir, served by an http.server on 127.0.0.1):
    /pypi/<project>/   PyPI stand-in: PEP 691 JSON with upload times (+ HTML)
    /cu121/<project>/  PyTorch-index stand-in: static HTML, no upload times, "+cu121" builds
    /cpu/<project>/    the same for "+cpu" builds
    wheelhouse/        flat folder for --offline --find-links
    channel/           conda channel (linux-64, linux-aarch64, noarch), indexed by rattler
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "lock"))

from .builders import CondaSpec, WheelSpec, build_channel, build_wheel, serve_directory, write_simple_index

X86 = "py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64"
ARM = "py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64"
NV = "py3-none-manylinux2014_x86_64"
ON_X86 = 'platform_system == "Linux" and platform_machine == "x86_64"'

TORCH_PYPI_DEPS = (
    f"nvidia-cudnn-cu12==9.1.0.70; {ON_X86}",
    f"nvidia-cuda-runtime-cu12==12.4.127; {ON_X86}",
    f"nvidia-nccl-cu12==2.21.5; {ON_X86}",
    "filelock",
)
PYPI_WHEELS = (
    WheelSpec("torch", "2.5.1", X86, TORCH_PYPI_DEPS),
    WheelSpec("torch", "2.5.1", ARM, TORCH_PYPI_DEPS),
    WheelSpec("nvidia-cudnn-cu12", "9.1.0.70", NV, ("nvidia-cublas-cu12",)),
    WheelSpec("nvidia-cublas-cu12", "12.4.5.8", NV),
    WheelSpec("nvidia-cublas-cu12", "12.1.3.1", NV),
    WheelSpec("nvidia-cuda-runtime-cu12", "12.4.127", NV),
    WheelSpec("nvidia-cuda-runtime-cu12", "12.1.105", NV),
    WheelSpec("nvidia-nccl-cu12", "2.21.5", NV),
    WheelSpec("nvidia-cuda-nvcc-cu12", "12.9.86", NV),
    WheelSpec(
        "tensorflow",
        "2.18.0",
        X86,
        ('nvidia-cuda-nvcc-cu12==12.9.86; extra == "and-cuda"',),
        extras=("and-cuda",),
    ),
    WheelSpec("mkl", "2025.0.0", "py2.py3-none-manylinux_2_28_x86_64"),
    WheelSpec("filelock", "3.16.1"),
    WheelSpec("filelock", "3.17.0"),
)
#: filelock 3.17.0 appears "later": an exclude-newer before it must hide it.
UPLOAD_TIMES = {"filelock-3.17.0-py3-none-any.whl": "2026-10-01T00:00:00.000000Z"}
CU121_WHEELS = (
    WheelSpec(  # tagged and linked like download.pytorch.org: linux_x86_64, "%2Bcu121" in hrefs
        "torch",
        "2.5.1+cu121",
        "cp312-cp312-linux_x86_64",
        (
            f"nvidia-cudnn-cu12==9.1.0.70; {ON_X86}",
            f"nvidia-cuda-runtime-cu12==12.1.105; {ON_X86}",
            f"nvidia-cublas-cu12==12.1.3.1; {ON_X86}",
            "filelock",
        ),
    ),
)
CPU_WHEELS = (
    WheelSpec("torch", "2.5.1+cpu", X86, ("filelock",)),
    WheelSpec("torch", "2.5.1+cpu", ARM, ("filelock",)),
)
CONDA_PACKAGES = (
    CondaSpec("zlib", "1.3.1", "0", "linux-64", ("__glibc >=2.17",)),
    CondaSpec("zlib", "1.3.1", "0", "linux-aarch64", ("__glibc >=2.17",)),
    CondaSpec("cuda-version", "12.4", "0", "noarch", ("__cuda >=12.4",)),
    CondaSpec("ca-certificates", "2024.8.30", "0", "noarch"),
)


@dataclass(frozen=True)
class LockWorld:
    root: Path
    base_url: str  # http://127.0.0.1:PORT
    wheelhouse: Path
    channel: Path
    wheels: dict[str, Path]  # file name -> built file

    @property
    def pypi(self) -> str:
        return f"{self.base_url}/pypi/"

    @property
    def cu121(self) -> str:
        return f"{self.base_url}/cu121/"

    @property
    def cpu(self) -> str:
        return f"{self.base_url}/cpu/"

    @property
    def channel_url(self) -> str:
        return self.channel.as_uri()


@pytest.fixture(scope="session")
def lock_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockWorld]:
    root = tmp_path_factory.mktemp("lk-world")
    built = root / "built"
    wheels: dict[str, Path] = {}
    groups: dict[str, list[Path]] = {"pypi": [], "cu121": [], "cpu": []}
    for group, specs in (("pypi", PYPI_WHEELS), ("cu121", CU121_WHEELS), ("cpu", CPU_WHEELS)):
        for spec in specs:
            path = build_wheel(spec, built / group)
            wheels[path.name] = path
            groups[group].append(path)
    serve = root / "serve"
    write_simple_index(groups["pypi"], serve / "pypi", upload_times=UPLOAD_TIMES)
    write_simple_index(groups["cu121"], serve / "cu121")
    write_simple_index(groups["cpu"], serve / "cpu")
    wheelhouse = root / "wheelhouse"
    wheelhouse.mkdir()
    for path in groups["pypi"]:
        if not path.name.startswith("filelock-3.17"):
            shutil.copy(path, wheelhouse / path.name)
    channel = build_channel(CONDA_PACKAGES, root / "channel", root / "conda-work")

    # Index pages and repodata of throw-away servers and channels stay out of the user's caches.
    caches = {"UV_CACHE_DIR": root / "uv-cache", "RATTLER_CACHE_DIR": root / "rattler-cache"}
    old = {name: os.environ.get(name) for name in caches}
    os.environ.update({name: str(path) for name, path in caches.items()})
    try:
        with serve_directory(serve) as base_url:
            yield LockWorld(root, base_url, wheelhouse, channel, wheels)
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
