"""envctl as users install it: a wheel built from the sdist, installed outside the checkout.

The wheel is built with ``uv build`` (sdist first, then the wheel from the sdist, as a release
would), from a copy of the files the sdist needs, so nothing is written into the checkout. It is
installed three times: into a fresh venv (``uv pip install``, what ``pip install`` does) and as a
tool, by ``uv tool install`` and by ``pipx install``, each with its own tool and bin folders. Each installed ``envctl`` runs from an
empty directory, with no ENVCTL_MATRIX: solve, lock (against a local index of real wheels),
matrix show, base build (busybox) and demo --help. Needs PyPI (or the configured mirror) for the
build backend and the dependencies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .lock.builders import WheelSpec, build_wheel, serve_directory, write_simple_index

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from json_envelope import assert_envelope

pytestmark = [pytest.mark.integration, pytest.mark.network]

REPO = Path(__file__).resolve().parents[2]
#: what the sdist is made of (MANIFEST.in and setuptools' defaults)
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "LICENSE", "README.md", "envctl")
SOURCES += ("compat_matrix", "profiles", "images")
PROFILE = """\
[environment]
name = "tiny"
python = ">=3.10"

[packages]
pip = ["filelock>=3.16"]

[targets]
arch = ["x86_64"]
"""
#: the debootstrap base (images/debian-bookworm-python) has Python 3.11
PROFILE_311 = PROFILE.replace('python = ">=3.10"', 'python = "~=3.11.0"')


def _uv() -> str:
    from envctl.adapters.uv import find_uv

    return find_uv()


def _run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _checked(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    r = _run(argv, cwd, env)
    assert r.returncode == 0, f"{argv}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel-build")
    source = root / "src"
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    out = root / "dist"
    _checked([_uv(), "build", "--sdist", "--wheel", "-o", str(out), str(source)], root, dict(os.environ))
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("envctl_cluster-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> dict[str, Path]:
    """install kind -> the ``envctl`` executable it put on disk."""
    root = tmp_path_factory.mktemp("installs")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    venv = root / "venv"
    _checked([_uv(), "venv", "-q", "--python", sys.executable, str(venv)], root, env)
    _checked([_uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(wheel)], root, env)
    tools = dict(env, UV_TOOL_DIR=str(root / "tools"), UV_TOOL_BIN_DIR=str(root / "bin"))
    _checked([_uv(), "tool", "install", "-q", "--python", sys.executable, str(wheel)], root, tools)
    pipx = shutil.which("pipx")
    assert pipx, "pipx is missing: tests/run.sh installs Debian's pipx"
    pipxes = dict(env, PIPX_HOME=str(root / "pipx"), PIPX_BIN_DIR=str(root / "pipx-bin"))
    _checked([pipx, "install", "--python", sys.executable, str(wheel)], root, pipxes)
    return {
        "venv": venv / "bin" / "envctl",
        "uv tool": root / "bin" / "envctl",
        "pipx": root / "pipx-bin" / "envctl",
    }


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local PyPI stand-in with one real wheel (PEP 691 JSON with upload times)."""
    root = tmp_path_factory.mktemp("tiny-index")
    built = build_wheel(WheelSpec("filelock", "3.16.1"), root / "built")
    write_simple_index([built], root / "serve" / "pypi", upload_times={})
    with serve_directory(root / "serve") as base_url:
        yield f"{base_url}/pypi/"


@pytest.fixture(params=["venv", "uv tool", "pipx"])
def envctl(request: pytest.FixtureRequest, installed: dict[str, Path], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the installed envctl in an empty directory, with every cache and state dir inside tmp."""
    exe = installed[request.param]
    assert exe.is_file(), f"{request.param}: no envctl at {exe}"
    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ENVCTL_MATRIX", "VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
        ENVCTL_CACHE=str(tmp_path / "envctl-cache"),
        ENVCTL_STATE_DIR=str(tmp_path / "state"),
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        PATH=os.pathsep.join([str(exe.parent), env.get("PATH", "")]),
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _run([str(exe), *args], work, env)

    def with_env(**extra: str):  # type: ignore[no-untyped-def]
        return lambda *args: _run([str(exe), *args], work, dict(env, **extra))

    run.work = work  # type: ignore[attr-defined]
    run.with_env = with_env  # type: ignore[attr-defined]
    return run


def test_the_wheel_and_sdist_carry_the_data_and_the_license(dist: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    for folder in ("compat_matrix", "profiles", "images"):
        committed = {p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*") if p.is_file()}
        assert committed
        assert {f"envctl/_data/{c}" for c in committed} <= names, folder
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    import tarfile

    (sdist,) = dist.glob("envctl_cluster-*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {"LICENSE", "setup.py", "compat_matrix/torch.toml", "images/busybox/recipe.toml"} <= members


def test_installed_envctl_reads_its_own_data(envctl) -> None:  # type: ignore[no-untyped-def]
    r = envctl("--version")
    assert r.returncode == 0 and "envctl" in r.stdout
    r = envctl("demo", "--help")
    assert r.returncode == 0 and "--profile" in r.stdout, r.stderr
    # the matrix shipped in the package is the checkout's, byte for byte
    r = envctl("matrix", "validate", "--json")
    assert r.returncode == 0, r.stderr
    from envctl.adapters.matrix_files import matrix_hash

    assert json.loads(r.stdout)["matrix_version"] == matrix_hash(REPO / "compat_matrix")
    r = envctl("matrix", "show", "torch", "--json")
    doc = json.loads(r.stdout)
    assert_envelope(doc, r.returncode, "envctl.matrix-show/1")
    assert len(doc["rows"]) > 50
    r = envctl("matrix", "show", "cuda")
    assert r.returncode == 0 and "12.8" in r.stdout, r.stderr


def test_installed_envctl_takes_another_matrix(envctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from envctl.adapters.matrix_files import matrix_hash

    other = tmp_path / "site-matrix"
    shutil.copytree(REPO / "compat_matrix", other)
    torch = other / "torch.toml"
    torch.write_text(torch.read_text() + "\n# a site's own copy\n")
    assert matrix_hash(other) != matrix_hash(REPO / "compat_matrix")
    r = envctl("matrix", "validate", "--matrix", str(other), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["matrix_version"] == matrix_hash(other), r.stderr
    r = envctl.with_env(ENVCTL_MATRIX=str(other))("matrix", "validate", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["matrix_version"] == matrix_hash(other), r.stderr
    r = envctl.with_env(ENVCTL_MATRIX=str(tmp_path / "none"))("matrix", "show", "cuda")
    assert r.returncode == 2 and "none" in r.stderr, r.stderr


def test_installed_envctl_solves_and_locks_from_an_empty_directory(envctl, index: str) -> None:  # type: ignore[no-untyped-def]
    work: Path = envctl.work
    (work / "tiny.toml").write_text(PROFILE)
    r = envctl("solve", "tiny.toml", "--json")
    assert_envelope(json.loads(r.stdout), r.returncode, "envctl.solution/1")
    assert r.returncode == 0, r.stdout
    r = envctl("lock", "tiny.toml", "--index-url", index, "--json", "-v")
    doc = json.loads(r.stdout)  # -v: progress on stderr, stdout still one JSON document
    assert_envelope(doc, r.returncode, "envctl.lock/1")
    assert doc["status"] == "written" and doc["platforms"][0]["pip"] == 1, doc
    lines = r.stderr.splitlines()
    start = lines.index("envctl lock: resolve linux-64 (uv)")
    assert lines[start + 1 : start + 2] == [f"  linux-64: pip resolve (uv) from {index}"], r.stderr
    assert lines[start + 2].startswith("  linux-64: uv: Resolved 1 package"), r.stderr  # uv's own report
    assert lines[start + 3 : start + 5] == ["  linux-64: 1 pip files", "  linux-64: 1 pip + 0 conda files"]
    assert (work / "conda-lock.yml").is_file()
    r = envctl("lock", "tiny.toml", "--index-url", index, "--check", "--json")
    assert json.loads(r.stdout)["status"] == "fresh" and r.returncode == 0
    # a shipped example profile solves too, by the path envctl names in its hint
    r = envctl("solve", "no-such.toml")
    assert r.returncode == 2 and "example profiles: " in r.stderr, r.stderr
    examples = Path(r.stderr.split("example profiles: ", 1)[1].strip())
    assert REPO not in examples.parents, examples
    r = envctl("solve", str(examples / "torch-train-h100.toml"), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["frameworks"], r.stdout


def test_installed_envctl_builds_a_shipped_base_recipe(envctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("busybox") is None:
        pytest.fail("busybox is missing: bash tests/run.sh installs busybox-static")
    r = envctl("base", "build", "busybox", "--no-load", "--json")
    doc = json.loads(r.stdout)
    assert_envelope(doc, r.returncode, "envctl.base/1")
    assert r.returncode == 0 and doc["reused"] is False, r.stderr
    assert r.stderr == ""  # --json: no progress unless -v
    assert Path(doc["layout"], "index.json").is_file()
    assert Path(doc["layout"]).is_relative_to(tmp_path / "envctl-cache")
    r = envctl("base", "build", "busybox", "--no-load", "--json")
    assert json.loads(r.stdout)["reused"] is True
    r = envctl("base", "build", "busybox", "--no-load", "--cache-dir", str(tmp_path / "other"))
    assert r.returncode == 0 and r.stdout.startswith("built base:busybox"), r.stderr
    # piped: one plain line per phase, no animation
    assert r.stderr.splitlines() == [
        "envctl base build: busybox root filesystem",
        "envctl base build: layer (tar + gzip)",
        "envctl base build: OCI layout",
    ]
    r = envctl("base", "build", "busybox", "--no-load", "--cache-dir", str(tmp_path / "third"), "-q")
    assert r.returncode == 0 and r.stderr == ""


@pytest.fixture(scope="module")
def debian_base() -> Path:
    """The shipped debootstrap recipe's OCI layout, built once into the persistent test cache."""
    from envctl.adapters.blob_cache import BlobCache, default_cache_root
    from envctl.services.build.base_images import build_base, load_recipe

    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is missing: bash tests/run.sh installs it")
    recipe = load_recipe(REPO / "images", "debian-bookworm-python")
    return Path(build_base(recipe, BlobCache(default_cache_root()), load=False).layout)


def test_installed_envctl_builds_the_image_of_its_lock(envctl, index: str, debian_base: Path) -> None:  # type: ignore[no-untyped-def]
    work: Path = envctl.work
    (work / "train.toml").write_text(PROFILE_311)
    r = envctl("lock", "train.toml", "--index-url", index, "-q")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    base = f"oci:{debian_base}"
    r = envctl("build", "conda-lock.yml", "--base", base, "-o", "image.oci", "--json", "-v")
    doc = json.loads(r.stdout)  # -v: progress on stderr only
    assert_envelope(doc, r.returncode, "envctl.build/1")
    assert r.returncode == 0, r.stderr
    assert (work / "image.oci" / "index.json").is_file()
    lines = r.stderr.splitlines()
    assert "envctl build: fetch 1 files (1 to download)" in lines, r.stderr
    downloads = [line for line in lines if line.endswith(")") and ": downloaded (" in line]
    assert len(downloads) == 1 and "filelock" in downloads[0], r.stderr  # bytes counted, size shown
    assert any(line.startswith("envctl build: ") and line.endswith(" layers") for line in lines), r.stderr
    assert any(line.startswith("  layer ") for line in lines), r.stderr
    # again, piped and without -v: one line per phase, the file now cached
    r = envctl("build", "conda-lock.yml", "--base", base, "-o", "again.oci")
    assert r.returncode == 0, r.stderr
    assert "envctl build: fetch 1 files (0 to download)" in r.stderr.splitlines(), r.stderr
    assert all(line.startswith("envctl build: ") for line in r.stderr.splitlines()), r.stderr
    assert doc["image_digest"] in r.stdout  # the same lock, the same image
