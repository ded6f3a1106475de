"""``core.init_profile``: frameworks moved under [frameworks], CUDA pins left out, conda ranges as PEP 440."""

from __future__ import annotations

import pytest

from envctl.adapters.profile_file import parse_profile
from envctl.core.init_profile import InitTargets, TeamFile, conda_to_pep440, draft_profile, profile_name
from envctl.errors import InputError


def _draft(team: TeamFile, **targets: object):  # type: ignore[no-untyped-def]
    return draft_profile(team, name="t", python=None, targets=InitTargets(**targets))  # type: ignore[arg-type]


def test_pip_frameworks_move_and_the_rest_stays() -> None:
    team = TeamFile(
        "requirements.txt",
        "requirements",
        pip=(
            "torch==2.4.1+cu121",
            "numpy>=1.26",
            "jaxlib==0.4.30",
            "jax[cuda12]>=0.4.30",
            "TensorFlow>=2.16",
        ),
    )
    draft = _draft(team, gpus=("H100",))
    assert draft.document["frameworks"] == {
        "jax[cuda12]": "==0.4.30,>=0.4.30",
        "tensorflow": ">=2.16",
        "torch": "==2.4.1",
    }
    assert draft.document["packages"] == {"pip": ["numpy>=1.26"]}
    assert draft.moved[0] == "torch==2.4.1+cu121 -> [frameworks] torch"
    assert any("local label" in note for note in draft.notes)
    assert draft.document["targets"] == {"arch": ["x86_64"], "gpus": ["H100"]}
    # what init writes, the profile reader takes
    profile = parse_profile(draft.document, "p.toml")
    assert {f.name for f in profile.frameworks} == {"torch", "jax", "tensorflow"}


def test_cuda_wheels_and_conda_cuda_pins_are_left_out_with_a_note() -> None:
    team = TeamFile(
        "environment.yml",
        "environment",
        pip=("nvidia-cudnn-cu12==9.1.0.70", "triton==3.0.0", "transformers"),
        conda=(
            "python=3.11",
            "pytorch::pytorch=2.4",
            "pytorch-cuda=12.1",
            "cudatoolkit=11.8",
            "numpy>=1.26",
            "pip",
        ),
        channels=("pytorch", "conda-forge"),
    )
    draft = _draft(team)
    doc = draft.document
    assert doc["environment"]["python"] == "==3.11.*"
    assert doc["frameworks"] == {"torch": "==2.4.*"}
    assert doc["packages"] == {
        "pip": ["transformers"],
        "conda": ["numpy>=1.26"],
        "channels": ["pytorch", "conda-forge"],
    }
    left_out = [n for n in draft.notes if "left out" in n]
    assert len(left_out) == 4
    assert draft.notes[-1].startswith("no GPUs named: the frameworks are solved CPU-only")


def test_no_frameworks_no_cpu_note_and_conda_without_channels_gets_conda_forge() -> None:
    draft = _draft(TeamFile("e.yml", "environment", conda=("libzlib",)))
    assert "frameworks" not in draft.document
    assert draft.document["packages"]["channels"] == ["conda-forge"]
    assert draft.notes == ("no conda channels named: conda-forge is assumed",)


@pytest.mark.parametrize(
    ("conda", "pep440"),
    [
        ("=2.1", "==2.1.*"),
        ("2.1.*", "==2.1.*"),
        (">=2.1,<3", ">=2.1,<3"),
        ("2.1.0", "==2.1.0"),
        ("", ""),
        ("*", ""),
    ],
)
def test_conda_ranges_as_pep_440(conda: str, pep440: str) -> None:
    assert conda_to_pep440(conda, "w") == pep440


def test_conda_alternatives_are_refused_naming_the_file() -> None:
    with pytest.raises(InputError, match=r"^env\.yml: pytorch 2\.1\|2\.2: '2\.1\|2\.2': alternatives"):
        _draft(TeamFile("env.yml", "environment", conda=("pytorch 2.1|2.2",)))


def test_a_bad_requirement_names_the_file() -> None:
    with pytest.raises(InputError, match=r"^r.txt: invalid requirement 'torch=='"):
        _draft(TeamFile("r.txt", "requirements", pip=("torch==",)))


def test_profile_names() -> None:
    assert profile_name("", "my model!", "x") == "my-model"
    assert profile_name("", "") == "env"
