import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from envctl.adapters.inventory_file import import_ansible, load_inventory
from envctl.cli import main
from envctl.errors import InputError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "push"


def write(tmp_path: Path, text: str, name: str = "inv.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(params=["ssh -G", "paramiko"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Both ways of reading the SSH configuration: OpenSSH's own, and paramiko without it."""
    if request.param == "paramiko":
        monkeypatch.setenv("PATH", str(tmp_path / "no-ssh-here"))
    else:
        assert shutil.which("ssh"), "OpenSSH's client (openssh-client) is needed for these tests"
    return str(request.param)


def test_real_ssh_config_is_honoured_and_explicit_settings_win(tmp_path: Path, reader: str) -> None:
    inv_path = write(
        tmp_path,
        f"""
[defaults]
ssh_config = "{FIXTURES / "ssh_config"}"
user = "fallback"
port = 2299

[groups.gpu]
nodes = ["gpu[1-2]"]

[nodes.gpu2]
port = 22
host = "10.0.0.2"

[nodes.login1]
[nodes.other]
""",
    )
    inv = load_inventory(inv_path)
    gpu1, gpu2 = inv.node("gpu1"), inv.node("gpu2")
    assert (gpu1.host, gpu1.user, gpu1.port) == ("gpu1.cluster.example", "from-ssh-config", 2022)
    assert gpu1.key is None
    assert [os.path.expanduser(k) for k in gpu1.key_files] == [os.path.expanduser("~/.ssh/cluster_key")]
    assert (gpu2.host, gpu2.user, gpu2.port) == ("10.0.0.2", "from-ssh-config", 22)
    login = inv.node("login1")
    assert login.jump is not None and (login.jump.host, login.jump.port) == (
        "bastion.example",
        2223,
    )
    other = inv.node("other")
    assert (other.host, other.user, other.port) == ("other", "fallback", 2299)


def test_ssh_config_can_be_turned_off(tmp_path: Path, reader: str) -> None:
    inv_path = write(tmp_path, '[defaults]\nssh_config = ""\n[nodes.gpu1]\n')
    assert load_inventory(inv_path).node("gpu1").host == "gpu1"


def test_malformed_toml_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[nodes.a\n")
    with pytest.raises(InputError, match=str(path)):
        load_inventory(path)


def check_imported(document: dict[str, Any], dropped: Any) -> None:
    nodes = document["nodes"]
    assert set(nodes) == {"login1", "gpu01", "gpu02", "gpu03", "gpu04", "gpu-special"} | {
        "cpu-a",
        "cpu-b",
        "cpu-c",
    }
    special = {k: v for k, v in nodes["gpu-special"].items() if k != "python"}
    assert special == {"host": "192.0.2.99", "port": 2222, "user": "ops", "key": "~/.ssh/special"}
    assert nodes["cpu-a"]["port"] == 2200
    assert document["groups"]["gpu"]["nodes"][:4] == ["gpu01", "gpu02", "gpu03", "gpu04"]
    assert set(document["groups"]["cluster"]["nodes"]) >= {"gpu01", "cpu-c"}


def test_import_ini(tmp_path: Path) -> None:
    text, document, dropped = import_ansible(FIXTURES / "ansible.ini", reader="builtin")
    check_imported(document, dropped)
    # host var beats group var
    assert document["nodes"]["gpu01"] == {"user": "ml", "port": 2200, "python": "/usr/bin/python3"}
    assert document["nodes"]["login1"] == {"host": "192.0.2.10", "user": "admin"}
    assert dropped == {}
    inv = load_inventory(write(tmp_path, text), ssh_config=None)  # the TOML reads back
    assert inv.node("gpu02").user == "ml" and inv.node("gpu-special").user == "ops"


def test_import_yaml(tmp_path: Path) -> None:
    text, document, _ = import_ansible(FIXTURES / "ansible.yml", reader="builtin")
    check_imported(document, [])
    assert document["nodes"]["gpu01"] == {"user": "ops", "port": 2200}
    assert document["nodes"]["login1"] == {"user": "base", "host": "192.0.2.10"}
    inv = load_inventory(write(tmp_path, text), ssh_config=None)
    assert inv.node("cpu-b").user == "base"


def test_import_cli_writes_atomically_and_reports_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cluster.toml"
    main(
        [
            "inventory",
            "import",
            str(FIXTURES / "ansible.ini"),
            "-o",
            str(out),
            "--json",
            "--reader",
            "builtin",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert report["output"] == str(out) and "gpu-special" in report["nodes"]
    assert [p.name for p in tmp_path.iterdir()] == ["cluster.toml"]  # no temp file left
    main(["inventory", "show", "-i", str(out), "--json", "--limit", "gpu"])
    shown = json.loads(capsys.readouterr().out)
    assert [n["name"] for n in shown["nodes"]][:2] == ["gpu01", "gpu02"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[gpu]\nn1 ansible_port\n", ":2: expected key=value"),
        ("[gpu:weird]\n", ":1: unknown section"),
        ("[gpu]\nn[1:a]\n", "host range"),
    ],
)
def test_bad_ini_names_line(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text, "hosts.ini")
    with pytest.raises(InputError, match=words) as err:
        import_ansible(path, reader="builtin")
    assert str(path) in err.value.message


def test_bad_yaml_and_bad_result_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="malformed YAML"):
        import_ansible(write(tmp_path, "all: [\n", "a.yml"), reader="builtin")
    with pytest.raises(InputError, match="unknown key 'host'"):
        import_ansible(write(tmp_path, "all:\n  host: {}\n", "b.yml"), reader="builtin")
    with pytest.raises(InputError, match=r"nodes\.n1\.port"):
        import_ansible(write(tmp_path, "[g]\nn1 ansible_port=http\n", "c.ini"), reader="builtin")


def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[nodes.a]\nport = 0\n")
    with pytest.raises(SystemExit) as exit_:
        main(["inventory", "show", "-i", str(path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}: nodes.a.port" in err and "Traceback" not in err


def test_error_messages_keep_bracketed_table_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[hosts]\n")
    with pytest.raises(SystemExit):
        main(["inventory", "show", "-i", str(path)])
    assert "[defaults], [groups.NAME], [nodes.NAME]" in capsys.readouterr().err


def test_json_errors_are_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[nodes.a]\nruntime = 'lxc'\n")
    with pytest.raises(SystemExit) as exit_:
        main(["inventory", "show", "-i", str(path), "--json"])
    assert exit_.value.code == 2
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["error"].startswith(f"{path}: nodes.a.runtime")


def test_builtin_reader_takes_directories_and_vars_folders(tmp_path: Path) -> None:
    src = tmp_path / "inventory"
    (src / "group_vars" / "gpu").mkdir(parents=True)
    (src / "host_vars").mkdir()
    (src / "10-hosts.ini").write_text("[gpu]\ngpu1:2222\ngpu2\n")
    (src / "20-more.yml").write_text("all:\n  children:\n    cpu:\n      hosts:\n        cpu1:\n")
    (src / "notes.md").write_text("[not an inventory\n")  # skipped, as Ansible skips it
    (src / "group_vars" / "gpu" / "main.yml").write_text("ansible_user: ml\nansible_become: true\n")
    (src / "group_vars" / "all.yml").write_text("ansible_python_interpreter: /usr/bin/python3\n")
    (src / "host_vars" / "gpu2.yaml").write_text("ansible_user: special\nowner: me\n")
    _, document, dropped = import_ansible(src, reader="builtin")
    nodes = document["nodes"]
    assert nodes["gpu1"] == {"port": 2222, "user": "ml", "become": True, "python": "/usr/bin/python3"}
    assert nodes["gpu2"]["user"] == "special" and nodes["cpu1"] == {"python": "/usr/bin/python3"}
    assert dropped == {"owner": ("is not used by envctl", ["gpu2"])}


def test_builtin_reader_refuses_a_dynamic_inventory_naming_the_fix(tmp_path: Path) -> None:
    script = write(tmp_path, "#!/bin/sh\necho '{}'\n", "inventory.py")
    script.chmod(0o755)
    with pytest.raises(InputError, match="dynamic inventory") as err:
        import_ansible(script, reader="builtin")
    assert err.value.hint is not None and "ansible-core" in err.value.hint


def test_dropped_variables_go_to_stderr_also_when_toml_goes_to_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, "[g]\nn1 ansible_user=ops rack=7 ansible_ssh_common_args='-o Compression=yes'\n", "h.ini"
    )
    main(["inventory", "import", str(path), "--reader", "builtin"])
    out, err = capsys.readouterr()
    assert 'user = "ops"' in out and "rack" not in out
    assert f"warning: {path}: rack is not used by envctl (dropped; hosts n1)" in err
    assert "ansible_ssh_common_args -o Compression is not honoured" in err
