"""`envctl base build` with a stand-in debootstrap on PATH: its phases, its errors, its timeout.

The stand-in prints what debootstrap prints (the lines of a real bookworm minbase run, shortened)
and fills the root with a few files; the real one runs in tests/integration/images.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from envctl.adapters import rootfs
from envctl.adapters.blob_cache import BlobCache
from envctl.errors import BuildFailure
from envctl.services.build.base_images import build_base, debootstrap_phase, load_recipe

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
from progress_recorder import RecordingProgress

LINES = """\
I: Target architecture can be executed
I: Retrieving InRelease
I: Checking Release signature
I: Valid Release signature (key id 4CB50190207B4758A3F73A796ED0E7B82643E131)
I: Retrieving Packages
I: Validating Packages
I: Resolving dependencies of required packages...
I: Retrieving libc6 2.36-9+deb12u10
I: Validating libc6 2.36-9+deb12u10
I: Extracting libc6...
I: Installing core packages...
I: Unpacking required packages...
I: Unpacking libc6:amd64...
I: Configuring required packages...
I: Configuring libc6:amd64...
I: Base system installed successfully.
"""


def _stand_in(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "debootstrap"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)


@pytest.fixture
def recipe(tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "images" / "deb"
    folder.mkdir(parents=True)
    (folder / "recipe.toml").write_text('kind = "debootstrap"\nsuite = "bookworm"\nepoch = 1717200000\n')
    return load_recipe(tmp_path / "images", "deb")


def test_debootstrap_output_becomes_phases_and_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recipe
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "lines").write_text(LINES)
    # debootstrap SUITE ROOT MIRROR: the root is the second to last argument
    _stand_in(
        tmp_path / "bin",
        f'eval root=\\${{$(($#-1))}}\nmkdir -p "$root/usr/bin" "$root/var/log"\n'
        f'echo hi > "$root/usr/bin/hello"; echo log > "$root/var/log/dpkg.log"\ncat {tmp_path}/lines\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    progress = RecordingProgress()
    result = build_base(recipe, BlobCache(tmp_path / "cache"), load=False, progress=progress)
    assert Path(result.layout, "index.json").is_file() and not result.reused
    assert progress.phases == [
        "debootstrap bookworm",
        "debootstrap: download",
        "debootstrap: resolve dependencies",
        "debootstrap: download",
        "debootstrap: extract",
        "debootstrap: install core packages",
        "debootstrap: unpack",
        "debootstrap: configure",
        "layer (tar + gzip)",
        "OCI layout",
    ]
    notes = [c[1] for c in progress.calls if c[0] == "note"]
    assert notes == LINES.splitlines()
    # a second build is the cached one: nothing to report
    again = RecordingProgress()
    assert build_base(recipe, BlobCache(tmp_path / "cache"), load=False, progress=again).reused
    assert again.phases == []


def test_debootstrap_phase_reads_only_info_lines() -> None:
    assert debootstrap_phase("I: Unpacking libc6:amd64...") == "unpack"
    assert debootstrap_phase("W: Failure trying to run: chroot ...") is None
    assert debootstrap_phase("I: Base system installed successfully.") is None


def test_a_failed_debootstrap_names_its_last_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recipe
) -> None:  # type: ignore[no-untyped-def]
    _stand_in(
        tmp_path / "bin",
        "echo 'I: Retrieving InRelease'\necho 'E: Failed getting release file' >&2\nexit 1\n",
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(BuildFailure, match="debootstrap bookworm failed: E: Failed getting release file"):
        build_base(recipe, BlobCache(tmp_path / "cache"), load=False, progress=RecordingProgress())


def test_a_debootstrap_past_its_time_is_stopped_with_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the child keeps the pipe open: only killing the whole process group ends the read
    _stand_in(tmp_path / "bin", "echo 'I: Retrieving InRelease'\nsleep 60 &\nsleep 60\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setattr(rootfs, "DEBOOTSTRAP_TIMEOUT_S", 1)
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(BuildFailure, match="timed out after 1s"):
        rootfs.debootstrap(tmp_path / "root", "bookworm", "minbase", [], "http://mirror.test", lines.append)
    assert time.monotonic() - started < 15
    assert lines == ["I: Retrieving InRelease"]
