"""`envctl base build` with a stand-in debootstrap on PATH: its phases, its errors, its timeout.

The stand-in prints what debootstrap prints (the lines of a real bookworm minbase run, shortened)
and fills the root with a few files; the real one runs in tests/integration/images.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from envctl.adapters import rootfs
from envctl.adapters.blob_cache import BlobCache
from envctl.errors import BuildError, BuildFailure, InputError
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


def _arm64_recipe(tmp_path: Path, extra: str = "") -> object:
    folder = tmp_path / "images" / "deb-arm64"
    folder.mkdir(parents=True)
    (folder / "recipe.toml").write_text(
        f'kind = "debootstrap"\narch = "arm64"\nsuite = "bookworm"\nepoch = 1717200000\n{extra}'
    )
    return load_recipe(tmp_path / "images", "deb-arm64")


def test_a_foreign_arch_is_debootstrapped_foreign_then_finished_in_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rootfs, "host_arch", lambda: "amd64")
    binfmt = tmp_path / "binfmt"
    binfmt.mkdir()
    (binfmt / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    monkeypatch.setattr(rootfs, "BINFMT_DIR", binfmt)
    _stand_in(
        tmp_path / "bin",
        f'echo "$@" > {tmp_path}/first\neval root=\\${{$(($#-1))}}\nmkdir -p "$root/debootstrap"\n'
        "echo 'I: Retrieving libc6'\n",
    )
    # the second stage runs inside the root: a stand-in unshare records how it was asked
    (tmp_path / "bin" / "unshare").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/second\n')
    (tmp_path / "bin" / "unshare").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    progress = RecordingProgress()
    result = build_base(_arm64_recipe(tmp_path), BlobCache(tmp_path / "cache"), load=False, progress=progress)  # type: ignore[arg-type]
    first = (tmp_path / "first").read_text().split()
    assert {"--arch=arm64", "--foreign", "--variant=minbase"} <= set(first)
    second = (tmp_path / "second").read_text().split()
    assert second[:5] == ["-m", "--propagation", "private", "chroot", first[-2]]
    assert second[5:] == ["/debootstrap/debootstrap", "--second-stage"]
    assert progress.phases[0] == "debootstrap bookworm arm64 (--foreign, under qemu)"
    layout = Path(result.layout)
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    manifest = json.loads((layout / "blobs" / "sha256" / entry["digest"][7:]).read_text())
    config = json.loads((layout / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text())
    assert config["architecture"] == "arm64"


def test_a_foreign_arch_without_qemu_is_refused_before_debootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rootfs, "BINFMT_DIR", tmp_path / "no-binfmt")
    monkeypatch.setattr(rootfs, "host_arch", lambda: "amd64")
    _stand_in(tmp_path / "bin", f"touch {tmp_path}/ran\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(BuildError, match="cannot run arm64 binaries on this machine") as caught:
        build_base(_arm64_recipe(tmp_path), BlobCache(tmp_path / "cache"), load=False)  # type: ignore[arg-type]
    assert "qemu-user-static" in str(caught.value.hint)
    assert not (tmp_path / "ran").exists()


def test_recipe_arch_is_checked(tmp_path: Path) -> None:
    folder = tmp_path / "images" / "odd"
    folder.mkdir(parents=True)
    (folder / "recipe.toml").write_text('kind = "debootstrap"\narch = "sparc"\n')
    with pytest.raises(InputError, match=r"recipe.toml: arch = .sparc."):
        load_recipe(tmp_path / "images", "odd")
    (folder / "recipe.toml").write_text('kind = "busybox"\narch = "arm64"\n')
    with pytest.raises(InputError, match="busybox base copies this machine's busybox"):
        load_recipe(tmp_path / "images", "odd")
