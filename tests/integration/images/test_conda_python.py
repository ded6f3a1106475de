"""A lock whose Python comes from conda, as conda-lock writes it, built on a base with no Python
(busybox) and run in a real engine: the interpreter is the conda package's.

The channel is made here (tests/fixtures/condalock/cl_python.py): this machine's CPython 3.11
repackaged as conda packages an interpreter (prefix placeholder in the ELF interpreter path and
RPATH), libz in a package of its own, verified by md5 only as conda-lock 1.x locks pin it, and a
``noarch: python`` package; plus a wheel with a console script.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from bd_cli import build_json, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "condalock"))

import bd_wheels
import cl_locks
import cl_python

pytestmark = pytest.mark.integration
PREFIX = "/opt/envctl/envs/default"


@pytest.fixture(scope="module")
def conda_python_lock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cl")
    try:
        channel = cl_python.build_channel(root / "channel")
    except cl_python.MissingTool as exc:
        pytest.fail(str(exc))
    wheel = bd_wheels.make_wheel(
        root / "wheels",
        "hello-cl",
        "1.0",
        {"hello_cl/__init__.py": "import six\ndef hello():\n    print('hello from', six.__version__)\n"},
        console_scripts={"hello-cl": "hello_cl:hello"},
    )
    return cl_locks.write_condalock(
        root / "conda-lock.yml", [c.path for c in channel], [wheel], md5_only=("libzlib",)
    )


def test_a_conda_python_lock_builds_on_busybox_and_its_interpreter_runs(
    tmp_path: Path, conda_python_lock: Path, bd_cache: Path, bd_busybox_layout: Path, bd_docker: str
) -> None:
    result = build_json(
        [
            str(conda_python_lock),
            "--base",
            f"oci:{bd_busybox_layout}",
            "--load",
            "--tag",
            "cl/conda-python:1",
        ],
        bd_cache,
    )
    assert result["env"] == {"name": "default", "prefix": PREFIX, "python": "3.11", "python_from": "conda"}
    assert result["verified"] == {"by_sha256": 3, "by_md5": 1, "md5_only": ["libzlib 1.2.13"]}

    import docker

    client = docker.from_env()
    try:
        env = dict(e.split("=", 1) for e in client.images.get("cl/conda-python:1").attrs["Config"]["Env"])
        assert env["CONDA_PREFIX"] == PREFIX and "VIRTUAL_ENV" not in env
        script = (
            "import sys, zlib, json, six, hello_cl; "
            "print(json.dumps({'prefix': sys.prefix, 'exe': sys.executable, 'version': list(sys.version_info[:2]), "
            "'six': six.__file__, 'zlib': zlib.decompress(zlib.compress(b'ok')).decode()}))"
        )
        output = client.containers.run(
            "cl/conda-python:1",
            ["sh", "-c", f'python -c "{script}" && hello-cl && ls /usr/bin/python3 2>&1 || true'],
            network_mode="none",
            remove=True,
        ).decode()
    finally:
        client.close()
    first, hello, *rest = output.splitlines()
    facts = json.loads(first)
    assert facts["prefix"] == PREFIX and facts["exe"] == f"{PREFIX}/bin/python"
    assert facts["version"] == [3, 11] and facts["zlib"] == "ok"
    assert facts["six"] == f"{PREFIX}/lib/python3.11/site-packages/six.py"
    assert hello == "hello from 1.16.0"
    assert "No such file" in " ".join(rest)  # the base has no Python of its own

    code, out, err = run_cli(["smoke", "cl/conda-python:1", "--json"])
    assert code == 0, err
    smoke = json.loads(out)
    assert smoke["python"].startswith("3.11.")
    assert {p["name"] for p in smoke["packages"]} >= {"hello-cl"}


def test_a_conda_python_lock_exports_for_conda_and_pip(tmp_path: Path, conda_python_lock: Path) -> None:
    code, _, err = run_cli(
        ["export", str(conda_python_lock), "--format", "explicit", "-o", str(tmp_path / "explicit.txt")]
    )
    assert code == 0, err
    lines = (tmp_path / "explicit.txt").read_text().splitlines()
    assert "@EXPLICIT" in lines
    conda = [line for line in lines if line.startswith("file:")]
    assert len(conda) == 3 and all("#" in line for line in conda)
    code, _, err = run_cli(
        ["export", str(conda_python_lock), "--format", "pylock", "-o", str(tmp_path / "pylock.toml")]
    )
    assert code == 0, err
    assert 'requires-python = "==3.11.*"' in (tmp_path / "pylock.toml").read_text()


def test_the_docker_builder_renders_a_conda_python_lock_onto_busybox(
    conda_python_lock: Path, bd_cache: Path, bd_base_cache: Path, bd_docker: str
) -> None:
    """render links the conda packages into the context; pip runs on the conda python."""
    from envctl.adapters.blob_cache import BlobCache
    from envctl.services.build.base_images import build_base, load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[3] / "images", "busybox")
    build_base(recipe, BlobCache(bd_base_cache), load=True)
    code, _, err = run_cli(
        [
            "build",
            str(conda_python_lock),
            "--builder",
            "docker",
            "--base",
            "base:busybox",
            "--tag",
            "cl/rendered:1",
            "--json",
        ],
        bd_cache,
    )
    assert code == 0, err
    import docker

    client = docker.from_env()
    try:
        output = client.containers.run(
            "cl/rendered:1",
            ["sh", "-c", "hello-cl && python -c 'import sys; print(sys.prefix)'"],
            network_mode="none",
            remove=True,
        ).decode()
    finally:
        client.close()
    assert output.splitlines() == ["hello from 1.16.0", PREFIX]
