"""Every shape of the rendered bootstrap script passes shellcheck (as POSIX sh, all default checks)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from envctl.core.bootstrap import BootstrapOptions
from envctl.services.bootstrap.script import render

pytestmark = pytest.mark.integration

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGv0cmVhbGx5LWEta2V5LWJ1dC13ZWxsLWZvcm1lZA ci@example"
SHAPES = {
    "prefix": BootstrapOptions(),
    "docker-gpu-user": BootstrapOptions(
        runtime="docker", gpu=True, service_user="envctl", authorized_key=KEY
    ),
    "podman-gpu": BootstrapOptions(
        runtime="podman", gpu=True, store="/srv/envctl/store", prefix_root="/srv/envs"
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_rendered_script_is_shellcheck_clean(shape: str, tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing: apt-get install shellcheck")
    path = tmp_path / "bootstrap.sh"
    path.write_text(render(SHAPES[shape]).text)
    done = subprocess.run(
        ["shellcheck", "--shell=sh", "--severity=style", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_shellcheck_finds_what_it_is_asked_to(tmp_path: Path) -> None:
    """The check above can fail: an unquoted expansion in the same template is reported."""
    path = tmp_path / "bad.sh"
    text = render(BootstrapOptions()).text
    assert 'ok() { echo "ok: $*"; }' in text
    path.write_text(text.replace('ok() { echo "ok: $*"; }', "ok() { echo ok: $1; }"))
    done = subprocess.run(["shellcheck", "--shell=sh", str(path)], capture_output=True, text=True)
    assert done.returncode != 0 and "SC2086" in done.stdout
