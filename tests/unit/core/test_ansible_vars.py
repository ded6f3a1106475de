import pytest

from envctl.core.ansible import AnsibleInventory, from_list_json, parse_ini, to_document
from envctl.core.ansible_vars import map_vars, ssh_args
from envctl.errors import InputError


def test_connection_variables_map_to_node_settings() -> None:
    settings, dropped = map_vars(
        {
            "ansible_host": "10.0.0.5",
            "ansible_become": "yes",
            "ansible_become_user": "svc",
            "ansible_python_interpreter": "/opt/py/bin/python3",
            "ansible_ssh_common_args": "-o ProxyJump=ops@bastion:2222,hop2 -o ForwardAgent=yes -i ~/.ssh/b",
            "ansible_become_password": "secret",
            "team": "ml",
        }
    )
    assert settings == {
        "host": "10.0.0.5",
        "become": True,
        "become_user": "svc",
        "python": "/opt/py/bin/python3",
        "jump": "ops@bastion:2222,hop2",
        "identity_files": ["~/.ssh/b"],
    }
    assert set(dropped) == {
        "ansible_ssh_common_args -o ForwardAgent",
        "ansible_become_password",
        "team",
    }
    assert "sudo -n" in dropped["ansible_become_password"]


def test_local_connection_proxy_command_and_templates() -> None:
    assert map_vars({"ansible_connection": "local"})[0] == {"connection": "local"}
    assert map_vars({"ansible_connection": "ssh"}) == ({}, {})
    assert "winrm" in map_vars({"ansible_connection": "winrm"})[1]["ansible_connection"]
    cmd = ssh_args("ansible_ssh_extra_args", "-o 'ProxyCommand=ssh -W %h:%p gw'")[0]
    assert cmd == {"proxy_command": "ssh -W %h:%p gw"}
    assert ssh_args("v", "-J gw")[0] == {"jump": "gw"}
    settings, dropped = map_vars({"ansible_user": "{{ lookup('env', 'USER') }}", "ansible_become": "maybe"})
    assert settings == {} and "Jinja" in dropped["ansible_user"] and "ansible_become" in dropped
    # become_user without become is ignored, as Ansible does
    assert map_vars({"ansible_become_user": "svc"})[0] == {}


def test_host_port_lines_as_ansible_reads_them() -> None:
    inv = parse_ini(
        "[g]\nweb1:2222\n10.0.0.7:2200 ansible_user=ops\n[2001:db8::1]:2201\nweb[3:4]:2300\n", "h"
    )
    document, _ = to_document(inv)
    assert document["nodes"]["web1"] == {"port": 2222}
    assert document["nodes"]["10.0.0.7"] == {"port": 2200, "user": "ops"}
    assert document["nodes"]["2001:db8::1"] == {"port": 2201}
    assert document["groups"]["g"]["nodes"][-1] == "web4" and document["nodes"]["web4"] == {"port": 2300}


def test_list_json_takes_resolved_hostvars_and_reports_dropped_per_host() -> None:
    doc = {
        "_meta": {"hostvars": {"a": {"ansible_port": 2222, "rack": 1}, "b": {"rack": 2}}},
        "all": {"children": ["ungrouped", "gpu"]},
        "gpu": {"hosts": ["a", "b"]},
    }
    document, dropped = to_document(from_list_json(doc, "src"))
    assert document == {"groups": {"gpu": {"nodes": ["a", "b"]}}, "nodes": {"a": {"port": 2222}, "b": {}}}
    assert dropped == {"rack": ("is not used by envctl", ["a", "b"])}
    with pytest.raises(InputError, match="group 'gpu' is not a mapping"):
        from_list_json({"gpu": ["a"]}, "src")


def test_merge_adds_a_second_file_of_a_directory() -> None:
    one, two = parse_ini("[g]\na\n", "1"), parse_ini("[g]\nb ansible_user=x\n[h:children]\ng\n", "2")
    merged = AnsibleInventory("dir")
    merged.merge(one)
    merged.merge(two)
    assert merged.group_hosts["g"] == ["a", "b"] and merged.children["h"] == ["g"]
