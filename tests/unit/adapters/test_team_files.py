"""``adapters.team_files``: requirements.txt, environment.yml, pyproject.toml and pylock.toml as teams write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from envctl.adapters.team_files import kind_of, read_team_file
from envctl.errors import InputError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "condalock"


def test_requirements_with_includes_continuations_options_and_comments(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("numpy>=1.26 # arrays\n-r base.txt\n")
    (tmp_path / "requirements.txt").write_text(
        "# top\n-r base.txt\n--index-url https://mirror/simple\ntorch==2.4.1 \\\n    --hash=sha256:aa\n"
        "-e ./lib\n-c constraints.txt\nscipy; python_version > '3.9'\nrich --config-settings=x=y\n"
    )
    team = read_team_file(tmp_path / "requirements.txt")
    assert team.kind == "requirements"
    assert team.pip == ("numpy>=1.26", "torch==2.4.1", "scipy; python_version > '3.9'", "rich")
    notes = "\n".join(team.notes)
    assert "requirements.txt:3: --index-url https://mirror/simple: pass it to `envctl lock`" in notes
    assert "requirements.txt:6: -e ./lib: an editable checkout" in notes
    assert "requirements.txt:7: -c constraints.txt: constraints" in notes
    assert "--config-settings=x=y: per-requirement pip option left out" in notes


def test_an_include_that_is_missing_names_it(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("-r nope.txt\n")
    with pytest.raises(InputError, match=r"nope.txt: no such file"):
        read_team_file(tmp_path / "r.txt")


def test_environment_yml(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text(
        "name: train\nchannels: [conda-forge]\nvariables: {A: b}\n"
        "dependencies:\n  - python=3.11\n  - numpy\n  - pip:\n    - transformers\n    - --pre\n"
    )
    team = read_team_file(path)
    assert (team.name, team.conda, team.pip, team.channels) == (
        "train",
        ("python=3.11", "numpy"),
        ("transformers",),
        ("conda-forge",),
    )
    assert any("'variables' left out" in n for n in team.notes) and any("--pre" in n for n in team.notes)
    path.write_text("dependencies:\n  - {conda: x}\n")
    with pytest.raises(InputError, match=r"environment.yml: dependencies\[0\]: expected a conda spec"):
        read_team_file(path)


def test_pyproject_dependencies_and_chosen_groups(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "m"\nrequires-python = ">=3.10"\ndependencies = ["torch>=2.4", "pandas"]\n'
        '[project.optional-dependencies]\ndev = ["pytest"]\ngpu = ["jax>=0.4"]\nall = ["m[dev,gpu]"]\n'
    )
    team = read_team_file(path, extras=["gpu"])
    assert (team.name, team.python, team.pip) == ("m", ">=3.10", ("torch>=2.4", "pandas", "jax>=0.4"))
    assert sorted(team.notes) == [
        f"{path}: optional group 'all' not taken (--extra all or --all-extras)",
        f"{path}: optional group 'dev' not taken (--extra dev or --all-extras)",
    ]
    every = read_team_file(path, all_extras=True)
    assert every.pip == ("torch>=2.4", "pandas", "pytest", "jax>=0.4") and every.notes == ()
    with pytest.raises(InputError, match="no optional-dependencies group 'cuda'"):
        read_team_file(path, extras=["cuda"])
    path.write_text('[project]\nname = "m"\ndynamic = ["dependencies"]\n')
    with pytest.raises(InputError, match=r"project\.dependencies is dynamic"):
        read_team_file(path)


def test_pylock_pins_every_package(tmp_path: Path) -> None:
    from envctl.services.lock.export import export_lock

    path = tmp_path / "pylock.toml"
    export_lock(FIXTURES / "condalock-pip-deps.yml", "pylock", platform="linux-64", output=path)
    team = read_team_file(path)
    assert team.kind == "pylock" and team.python.startswith("==3.")
    assert team.pip and all("==" in line for line in team.pip)
    path.write_text("lock-version = '1.0'\n")
    with pytest.raises(InputError, match=r"not a valid pylock\.toml"):
        read_team_file(path)


def test_kinds_from_names() -> None:
    assert [
        kind_of(Path(n)) for n in ("requirements-dev.txt", "env.yaml", "pyproject.toml", "pylock.gpu.toml")
    ] == [
        "requirements",
        "environment",
        "pyproject",
        "pylock",
    ]
    with pytest.raises(InputError, match="cannot tell what kind of file"):
        kind_of(Path("deps.cfg"))
