"""Profile loading: every malformed or contradictory profile is a one-line InputError naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from envctl.adapters.profile_file import apply_overrides, load_profile
from envctl.errors import InputError

PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(p.name for p in PROFILES.glob("*.toml")))
def test_bundled_profiles_load(name):
    profile, digest = load_profile(PROFILES / name)
    assert profile.name and len(digest) == 64


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[environment\nname='x'", "malformed TOML"),
        ("[frameworks]\ntorch='>=2'", "environment: missing required key"),
        ("[environment]\nname='x'\npyhton='3.11'", "environment.pyhton: unknown key"),
        ("[environment]\nname='a b'", "environment.name: expected an environment name"),
        ("[environment]\nname='x'\npython='>>3'", "environment.python: expected a version specifier"),
        ("[environment]\nname='x'\n[frameworks]\npytorch='>=2'", "frameworks.pytorch: unknown framework"),
        ("[environment]\nname='x'\n[frameworks]\ntorch=2", "frameworks.torch: expected a version range"),
        ("[environment]\nname='x'\n[targets]\narch=['sparc']", "targets.arch: unknown CPU arch 'sparc'"),
        ("[environment]\nname='x'\n[targets]\ndriver='latest'", "targets.driver: expected a version"),
        (
            "[environment]\nname='x'\n[targets]\ngpus='H100'\ncpu_vendor='via'",
            "targets.cpu_vendor: expected one of",
        ),
        (
            "[environment]\nname='x'\n[targets]\narch=['x86_64']\ngpu_arch=['aarch64']",
            "targets.gpu_arch: names an arch",
        ),
        ("[environment]\nname='x'\n[packages]\nconda=['ffmpeg']", "packages.channels: conda packages need"),
        ("[environment]\nname='x'\n[packages]\npip=['numpy>=>1']", "packages.pip: invalid requirement"),
        ("[environment]\nname='x'\n[blas]\nprefer='atlas'", "blas.prefer: expected one of"),
        ("environment = 3", "environment: expected a table"),
    ],
)
def test_malformed_profiles(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_profile(path)
    message = err.value.message
    assert str(path) in message and fragment in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such profile"):
        load_profile(tmp_path / "nope.toml")


def test_hash_ignores_formatting(tmp_path):
    a = write(tmp_path, "[environment]\nname = 'x'  # comment\n")
    _, h1 = load_profile(a)
    a.write_text("[environment]\nname='x'\n")
    _, h2 = load_profile(a)
    a.write_text("[environment]\nname='y'\n")
    _, h3 = load_profile(a)
    assert h1 == h2 != h3


def test_overrides_replace_targets(tmp_path):
    profile, _ = load_profile(PROFILES / "torch-train-h100.toml")
    changed = apply_overrides(profile, gpus=("A100",), driver="535.104.05", arch=("aarch64",))
    assert changed.targets.gpus == ("A100",)
    assert str(changed.targets.driver) == "535.104.05"
    assert changed.targets.platforms == ("linux-aarch64",)
    with pytest.raises(InputError, match="--driver"):
        apply_overrides(profile, driver="new")
