"""Finding 9: ``sandbox down --dir DIR`` decides that DIR is a sandbox before it unmounts or
deletes anything, and unmounts only under the sandbox's own node directories.

The system calls (umount, rm, ip, kill) are recorded, never run: the directories are decoys in
the test's temporary directory, and the mount table is a fake that lists mounts above, beside
and inside the sandbox.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from envctl.core.sandbox import plan_sandbox
from envctl.errors import InputError, SandboxError
from envctl.services.cluster import sandbox


class FakeSystem:
    """What down asks the system for; every command recorded, none run."""

    def __init__(self, mounts: list[str]) -> None:
        self.mounts = mounts
        self.commands: list[list[str]] = []

    def mounts_under(self, directory: str) -> list[str]:
        root = directory.rstrip("/") + "/"
        return sorted((m for m in self.mounts if m == directory or m.startswith(root)), key=len, reverse=True)

    def run(self, argv: list[str], **_: object) -> str:
        self.commands.append(list(argv))
        return ""


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A short temporary directory: sandbox directories are at most 48 characters long."""
    path = Path(tempfile.mkdtemp(prefix="sbd-", dir="/var/tmp"))  # not under /tmp: nodes replace it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeSystem:
    system = FakeSystem(["/", "/home", str(tmp_path), str(tmp_path / "sb" / "n1" / "docker" / "vfs" / "x")])
    system.mounts.append(str(tmp_path / "sb" / "elsewhere"))
    monkeypatch.setattr(sandbox, "require_root", lambda: None)
    monkeypatch.setattr(sandbox.system, "mounts_under", system.mounts_under)
    monkeypatch.setattr(sandbox.system, "run", system.run)
    monkeypatch.setattr(sandbox.system, "read_pid", lambda *_: None)
    monkeypatch.setattr(sandbox.system, "stop", lambda pids, grace: [])
    monkeypatch.setattr(sandbox.system, "netns_pids", lambda _name: [])
    monkeypatch.setattr(sandbox.system, "netns_exists", lambda _name: False)
    monkeypatch.setattr(sandbox.system, "link_exists", lambda _name: False)
    monkeypatch.setattr(sandbox.system, "wait_gone", lambda *_: True)
    return system


def _umounts(fake: FakeSystem) -> list[str]:
    return [c[-1] for c in fake.commands if c[0] == "umount"]


def test_a_directory_without_sandbox_state_is_refused_before_any_unmount(
    fake: FakeSystem, tmp_path: Path
) -> None:
    victim = tmp_path / "project"
    victim.mkdir()
    (victim / "main.py").write_text("precious")
    fake.mounts.append(str(victim / "mnt"))
    with pytest.raises(InputError, match="holds no sandbox state"):
        sandbox.down(str(victim))
    assert fake.commands == []  # nothing unmounted, nothing deleted
    assert (victim / "main.py").read_text() == "precious"


def test_the_root_directory_is_never_unmounted(fake: FakeSystem) -> None:
    with pytest.raises(InputError):
        sandbox.down("/")
    assert fake.commands == []


def test_only_the_sandboxs_own_mounts_are_unmounted(fake: FakeSystem, tmp_path: Path) -> None:
    plan = plan_sandbox(2, directory=str(tmp_path / "sb"))
    Path(plan.dir).mkdir()
    (Path(plan.dir) / sandbox.STATE_FILE).write_text(json.dumps(plan.to_dict()))
    report = sandbox.down(plan.dir)
    assert _umounts(fake) == [str(tmp_path / "sb" / "n1" / "docker" / "vfs" / "x")]
    assert ["rm", "-rf", "--one-file-system", plan.dir] in fake.commands
    assert f"dir {plan.dir}" in report.removed


@pytest.mark.parametrize(
    "edit",
    [
        lambda doc: doc["nodes"][0].update(root="/"),  # a node whose files would be all of /
        lambda doc: doc.update(dir="/"),  # copied from another directory
        lambda doc: doc["nodes"][0].update(netns="eth0"),  # a namespace up never makes
    ],
)
def test_a_state_file_that_up_did_not_write_is_refused(
    fake: FakeSystem, tmp_path: Path, edit: object
) -> None:
    plan = plan_sandbox(2, directory=str(tmp_path / "sb"))
    Path(plan.dir).mkdir()
    doc = plan.to_dict()
    edit(doc)  # type: ignore[operator]
    (Path(plan.dir) / sandbox.STATE_FILE).write_text(json.dumps(doc))
    with pytest.raises(SandboxError, match=r"sandbox\.json"):
        sandbox.down(plan.dir)
    assert fake.commands == []


def test_the_remains_of_a_crashed_up_are_removed_without_unmounting(fake: FakeSystem, tmp_path: Path) -> None:
    remains = tmp_path / "sb"
    remains.mkdir()
    (remains / "id_ed25519").write_text("key")
    sandbox.down(str(remains))
    assert _umounts(fake) == []
    assert fake.commands == [["rm", "-rf", "--one-file-system", str(remains)]]


def test_up_refuses_a_directory_that_holds_other_files(fake: FakeSystem, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text("precious")
    with pytest.raises(InputError, match="holds files the sandbox did not make"):
        sandbox._check_free(plan_sandbox(1, directory=str(project)))
