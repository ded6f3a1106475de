"""The rendered Dockerfile and context, and base recipes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "build"))

import bd_wheels

from envctl.adapters.blob_cache import BlobCache
from envctl.errors import BuildError, InputError
from envctl.services.build.base_images import load_recipe
from envctl.services.build.render import docker_from, render_dockerfile

ROOT = Path(__file__).resolve().parents[3]


def test_render_writes_hashed_requirements_and_vendored_wheels(tmp_path: Path) -> None:
    wheels = bd_wheels.standard_wheels(tmp_path / "w", lib_mb=1)
    lock = bd_wheels.write_lock(tmp_path / "l.yml", wheels)
    result = render_dockerfile(lock, tmp_path / "ctx", "base:img", BlobCache(tmp_path / "c"))
    ctx = tmp_path / "ctx"
    requirements = (ctx / "requirements.txt").read_text().splitlines()
    assert len(requirements) == result.packages == 4
    assert all(" --hash=sha256:" in line for line in requirements)
    assert sorted(p.name for p in (ctx / "wheels").iterdir()) == sorted(w.name for w in wheels)
    dockerfile = (ctx / "Dockerfile").read_text()
    assert "--require-hashes --no-deps" in dockerfile and "--no-index" in dockerfile
    # pip runs on the venv's python, never the base's own (externally managed, PEP 668)
    assert 'py=/opt/envctl/envs/bdtest/bin/python && "$py" /ctx/pip.whl/pip install' in dockerfile
    assert dockerfile.count("FROM base:img") == 2  # the wheels stay in the first stage
    assert "dev.envctl.cuda=12.4" in dockerfile
    assert (ctx / "pip.whl").is_file()


def test_docker_builder_needs_an_engine_base() -> None:
    assert docker_from("docker:debian:12") == "debian:12"
    assert docker_from("base:x") == "envctl-base/x:latest"
    assert docker_from("localhost:5000/py:3.11") == "localhost:5000/py:3.11"  # the engine pulls it
    with pytest.raises(BuildError, match="needs a base in the local engine"):
        docker_from("oci:/some/dir")


def test_recipes_load_and_bad_ones_are_input_errors(tmp_path: Path) -> None:
    recipe = load_recipe(ROOT / "images", "debian-bookworm-python")
    assert recipe.kind == "debootstrap" and recipe.data["include"] == ["python3"]
    with pytest.raises(InputError, match="no such base recipe"):
        load_recipe(ROOT / "images", "nope")
    (tmp_path / "x").mkdir()
    (tmp_path / "x/recipe.toml").write_text('kind = "apk"\n')
    with pytest.raises(InputError, match="kind = 'apk'"):
        load_recipe(tmp_path, "x")


@pytest.mark.parametrize(
    ("base_image", "from_image"),
    [
        ("docker:python:3.11-slim", "python:3.11-slim"),
        ("ghcr.io/org/py:3.11", "ghcr.io/org/py:3.11"),
        ("base:debian-bookworm-python", "envctl-base/debian-bookworm-python:latest"),
        (None, "envctl-base/debian-bookworm-python:latest"),
    ],
)
def test_render_builds_from_the_profiles_base_image(
    tmp_path: Path, base_image: str | None, from_image: str
) -> None:
    wheels = [bd_wheels.make_wheel(tmp_path / "w", "six", "1.16.0")]
    lock = bd_wheels.write_lock(tmp_path / "l.yml", wheels, base_image=base_image)
    result = render_dockerfile(lock, tmp_path / "ctx", None, BlobCache(tmp_path / "c"))
    assert result.from_image == from_image
    assert (tmp_path / "ctx/Dockerfile").read_text().count(f"FROM {from_image}") == 2
    # --from wins
    explicit = render_dockerfile(lock, tmp_path / "ctx2", "mine:1", BlobCache(tmp_path / "c"))
    assert explicit.from_image == "mine:1"
