"""envctl.node.hostenv: in-tree resolution, the ELF loader, the host view and the pack tree."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from envctl.node import gc, hostenv
from envctl.node.runtimes import link_target

PREFIX = "/opt/envctl/envs/demo"
DIGEST = "sha256:" + "ab" * 32


def fake_root(root: Path, conda: bool = False) -> Path:
    """A merged-/usr tree whose python3.11 is a real ELF program (this interpreter's)."""
    (root / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr/lib/python3.11").mkdir()
    (root / "usr/bin").mkdir()
    (root / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").write_bytes(b"loader")
    (root / "usr/lib64").mkdir()
    (root / "usr/lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    for name, target in (("lib", "usr/lib"), ("lib64", "usr/lib64"), ("bin", "usr/bin")):
        (root / name).symlink_to(target)
    (root / "usr/lib/x86_64-linux-gnu/libc.so.6").write_bytes(b"libc")
    (root / "usr/lib/x86_64-linux-gnu/abs-link").symlink_to("/usr/lib/x86_64-linux-gnu/libc.so.6")
    (root / "usr/lib/x86_64-linux-gnu/host-link").symlink_to("/etc/passwd")
    env = root / PREFIX.lstrip("/")
    (env / "bin").mkdir(parents=True)
    site = env / "lib/python3.11/site-packages/thepkg"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("X = 1\n")
    python = Path(os.path.realpath(sys.executable))
    if conda:
        shutil.copy(python, env / "bin/python3.11")
        (env / "bin/python").symlink_to("python3.11")
    else:
        shutil.copy(python, root / "usr/bin/python3.11")
        (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
        (env / "bin/python").symlink_to("/usr/bin/python3.11")
    (env / "bin/hello").write_text(f"#!{PREFIX}/bin/python\nprint('hi')\n")
    (env / "bin/notes").write_text("#!/bin/sh\necho notes\n")
    return root


def test_resolve_reads_absolute_links_inside_the_tree_and_never_climbs_out(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "root")
    assert (
        hostenv.resolve(str(root), "/lib64/ld-linux-x86-64.so.2")
        == "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    )
    assert hostenv.resolve(str(root), "/../../../usr/bin/python3.11") == "usr/bin/python3.11"
    (root / "loop").symlink_to("loop")
    with pytest.raises(hostenv.HostEnvError, match="too many levels"):
        hostenv.resolve(str(root), "loop")
    with pytest.raises(hostenv.HostEnvError, match="does not exist"):
        hostenv.resolve(str(root), "usr/nothing")


def test_elf_interpreter_is_read_from_the_program_header(tmp_path: Path) -> None:
    interp = hostenv.elf_interpreter(os.path.realpath(sys.executable))
    assert interp is not None and "ld-linux" in interp
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert hostenv.elf_interpreter(str(tmp_path / "script")) is None


def test_inspect_finds_the_venv_its_loader_libraries_and_scripts(tmp_path: Path) -> None:
    facts = hostenv.inspect(str(fake_root(tmp_path / "root")), PREFIX)
    assert facts.kind == "venv" and facts.version == "3.11" and facts.exe == "usr/bin/python3.11"
    assert facts.libdirs[0] == "usr/lib/x86_64-linux-gnu" and "usr/lib" in facts.libdirs
    assert facts.scripts == ("hello",)  # notes is not a Python script of the env


def test_write_view_bakes_the_final_paths_and_replaces_what_the_image_put_there(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "root")
    (root / hostenv.VIEW).mkdir()
    (root / hostenv.VIEW / "planted").write_text("from the image")
    view = Path(hostenv.write_view(str(root), hostenv.inspect(str(root), PREFIX), "/final/demo@x"))
    assert not (view / "planted").exists()
    launcher = (view / "bin/python").read_text()
    assert "exec /final/demo@x/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path" in launcher
    assert "--argv0 /final/demo@x/.envctl-host/bin/python /final/demo@x/usr/bin/python3.11" in launcher
    assert "home = /final/demo@x/usr/bin\n" in (view / "pyvenv.cfg").read_text()
    assert os.readlink(view / "lib") == "../opt/envctl/envs/demo/lib"
    assert (view / "lib/python3.11/site-packages/thepkg/__init__.py").is_file()
    hello = (view / "bin/hello").read_text()
    assert hello.startswith(
        "#!/bin/sh\n'''exec' /final/demo@x/.envctl-host/bin/python \"$0\" \"$@\"\n' '''\n"
    )
    assert hello.endswith("print('hi')\n") and os.access(view / "bin/hello", os.X_OK)
    assert os.readlink(view / "bin/python3") == "python"


def test_write_view_refuses_a_path_a_launcher_cannot_hold(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "root")
    facts = hostenv.inspect(str(root), PREFIX)
    with pytest.raises(hostenv.HostEnvError, match="launcher path"):
        hostenv.write_view(str(root), facts, "/final/it's:here")


def test_a_conda_env_keeps_its_own_python(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "root", conda=True)
    facts = hostenv.inspect(str(root), PREFIX)
    assert (
        facts.kind == "conda" and facts.loader is None and facts.exe == "opt/envctl/envs/demo/bin/python3.11"
    )
    view = Path(hostenv.write_view(str(root), facts, "/final/t"))
    assert "exec /final/t/opt/envctl/envs/demo/bin/python3.11 " in (view / "bin/python").read_text()


def test_pack_tree_is_relocatable_and_keeps_no_link_to_the_host(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "root")
    out = tmp_path / "out"
    hostenv.pack_tree(str(root), hostenv.inspect(str(root), PREFIX), str(out))
    launcher = (out / "bin/python").read_text()
    assert "/final" not in launcher and str(tmp_path) not in launcher
    assert "d=${me%/bin/*}" in launcher and '"$d"/libexec/python3.11 -s "$@"' in launcher
    assert (out / "local/lib/python3.11/dist-packages/thepkg/__init__.py").is_file()
    assert os.readlink(out / "lib/x86_64-linux-gnu/abs-link") == "libc.so.6"  # made relative
    assert not os.path.lexists(out / "lib/x86_64-linux-gnu/host-link")  # would be the host's file
    assert '"$(dirname -- "$(readlink -f -- "$0")")/python"' in (out / "bin/hello").read_text()


def test_a_tree_without_a_python_is_not_host_runnable(tmp_path: Path) -> None:
    (tmp_path / "opt/envctl/envs/demo").mkdir(parents=True)
    with pytest.raises(hostenv.HostEnvError, match="bin/python"):
        hostenv.inspect(str(tmp_path), PREFIX)


def test_link_target_names_the_view_only_for_a_record_that_has_one() -> None:
    assert link_target("demo", {"digest": DIGEST}) == "demo@" + "ab" * 32
    assert link_target("demo", {"digest": DIGEST, "host": True}) == "demo@" + "ab" * 32 + "/.envctl-host"
    assert link_target("demo", {"digest": DIGEST, "host": "../../etc"}) == "demo@" + "ab" * 32


def test_trees_in_use_sees_this_process_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "demo@1").mkdir()
    (tmp_path / "demo@2").mkdir()
    monkeypatch.chdir(tmp_path / "demo@1")
    assert gc.trees_in_use(str(tmp_path)) == {"demo@1"}
