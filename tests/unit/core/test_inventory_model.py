from typing import Any

import pytest

from envctl.core.inventory import parse_inventory
from envctl.core.ssh_options import from_paramiko
from envctl.errors import InputError

SRC = "cluster.toml"


def parse(data: dict[str, Any], lookup: Any = None) -> Any:
    return parse_inventory(data, source=SRC, ssh_lookup=lookup, local_user="me")


def test_groups_expand_and_settings_layer() -> None:
    inv = parse(
        {
            "defaults": {"user": "ops", "port": 2200, "runtime": "prefix"},
            "groups": {"gpu": {"nodes": ["gpu[01-03]"], "runtime": "docker"}},
            "nodes": {"gpu02": {"host": "10.0.0.2", "port": 22}, "login1": {"address": "10.0.0.9"}},
        }
    )
    assert [n.name for n in inv.nodes] == ["gpu01", "gpu02", "gpu03", "login1"]
    gpu01, gpu02 = inv.node("gpu01"), inv.node("gpu02")
    assert (gpu01.host, gpu01.port, gpu01.user, gpu01.runtime) == ("gpu01", 2200, "ops", "docker")
    assert (gpu02.host, gpu02.port, gpu02.groups) == ("10.0.0.2", 22, ("gpu",))
    login = inv.node("login1")
    assert (login.host, login.runtime, login.store) == ("10.0.0.9", "prefix", "/var/lib/envctl")


def test_builtin_defaults_use_local_user() -> None:
    node = parse({"nodes": {"a": {}}}).node("a")
    assert (node.user, node.port, node.runtime, node.jump) == ("me", 22, "oci", None)


def test_the_node_model_carries_everything_a_push_needs() -> None:
    node = parse(
        {
            "defaults": {"prefix_root": "/srv/envs"},
            "nodes": {"a": {"python": "/usr/bin/python3.11", "runtime": "prefix"}, "b": {}},
        }
    ).node("a")
    assert (node.runtime, node.prefix_root, node.python) == ("prefix", "/srv/envs", "/usr/bin/python3.11")
    b = parse({"nodes": {"b": {}}}).node("b")
    assert (b.runtime, b.prefix_root, b.python) == ("oci", "/opt/envctl/envs", "python3")


def test_unpack_limits_are_per_node_settings_unset_by_default() -> None:
    inv = parse(
        {
            "defaults": {"unpack_max_bytes": 200 << 30},
            "groups": {"big": {"nodes": ["a"], "unpack_max_entries": 5_000_000}},
            "nodes": {"a": {"unpack_max_depth": 512}, "b": {}},
        }
    )
    a, b = inv.node("a"), inv.node("b")
    assert (a.unpack_max_bytes, a.unpack_max_entries, a.unpack_max_depth) == (200 << 30, 5_000_000, 512)
    assert (b.unpack_max_bytes, b.unpack_max_entries, b.unpack_max_depth) == (200 << 30, None, None)


def test_jump_to_inventory_node_and_adhoc_host() -> None:
    inv = parse(
        {
            "nodes": {
                "login1": {"host": "10.0.0.9", "user": "gate"},
                "gpu1": {"jump": "login1"},
                "gpu2": {"jump": "alice@bastion:2222"},
            }
        }
    )
    jump = inv.node("gpu1").jump
    assert jump is not None and (jump.name, jump.host, jump.user) == ("login1", "10.0.0.9", "gate")
    adhoc = inv.node("gpu2").jump
    assert adhoc is not None and (adhoc.host, adhoc.port, adhoc.user) == ("bastion", 2222, "alice")


def test_jump_cycle_is_refused() -> None:
    with pytest.raises(InputError, match=r"nodes\.\w+\.jump"):
        parse({"nodes": {"a": {"jump": "b"}, "b": {"jump": "a"}}})


def test_ssh_config_sits_between_explicit_settings_and_defaults() -> None:
    config = {"hostname": "gpu1.example", "user": "cfg", "port": "2022", "identityfile": ["~/k"]}
    inv = parse(
        {
            "defaults": {"user": "dflt", "port": 2200, "key": "/dflt"},
            "groups": {"g": {"nodes": ["gpu[1-2]"]}},
            "nodes": {"gpu2": {"user": "explicit"}},
        },
        lookup=lambda name: from_paramiko(name, config, "~/.ssh/config"),
    )
    gpu1, gpu2 = inv.node("gpu1"), inv.node("gpu2")
    assert (gpu1.host, gpu1.user, gpu1.port, gpu1.key_files) == ("gpu1.example", "cfg", 2022, ("~/k",))
    assert (gpu2.user, gpu2.port) == ("explicit", 2022)


def test_select_by_group_node_and_hostlist() -> None:
    inv = parse({"groups": {"g": {"nodes": ["a[1-3]"]}}, "nodes": {"b": {}}})
    assert [n.name for n in inv.select("g")] == ["a1", "a2", "a3"]
    assert [n.name for n in inv.select("b,a[2-3]")] == ["a2", "a3", "b"]
    with pytest.raises(InputError, match="'zz'"):
        inv.select("zz")


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"nodes": {"gpu1": {"port": "abc"}}}, "nodes.gpu1.port"),
        ({"nodes": {"gpu1": {"port": 70000}}}, "nodes.gpu1.port"),
        ({"nodes": {"gpu1": {"runtime": "lxc"}}}, "nodes.gpu1.runtime"),
        ({"nodes": {"gpu1": {"colour": "red"}}}, "nodes.gpu1.colour"),
        ({"nodes": {"gpu1": {"store": "relative/path"}}}, "nodes.gpu1.store"),
        ({"nodes": {"gpu1": {"prefix_root": "envs"}}}, "nodes.gpu1.prefix_root"),
        ({"nodes": {"gpu1": {"python": ""}}}, "nodes.gpu1.python"),
        ({"nodes": {"gpu1": {"user": ""}}}, "nodes.gpu1.user"),
        ({"nodes": {"gpu1": {"unpack_max_bytes": 0}}}, "nodes.gpu1.unpack_max_bytes"),
        ({"nodes": {"gpu1": {"unpack_max_entries": "many"}}}, "nodes.gpu1.unpack_max_entries"),
        ({"defaults": {"unpack_max_depth": True}, "nodes": {"a": {}}}, "defaults.unpack_max_depth"),
        ({"nodes": {"gpu1": {"unpack_max_bytes": 2**63}}}, "nodes.gpu1.unpack_max_bytes"),
        ({"nodes": {"gpu[1-": {}}}, "nodes.gpu[1-"),
        ({"groups": {"g": {"nodes": "gpu[3-1]"}}}, "groups.g.nodes"),
        ({"groups": {"g": {"nodes": [1, 2]}}}, "groups.g.nodes"),
        ({"defaults": {"port": True}, "nodes": {"a": {}}}, "defaults.port"),
        ({"nodes": {"a": {"jump": "a"}}}, "nodes.a.jump"),
        ({"nodes": {"a": {"jump": "bad host name"}}}, "nodes.a.jump"),
        ({"hosts": {}}, "hosts"),
        ({}, "nodes"),
    ],
)
def test_errors_name_file_and_key_path(data: dict[str, Any], where: str) -> None:
    with pytest.raises(InputError) as err:
        parse(data)
    assert err.value.message.startswith(f"{SRC}: {where}")


def test_two_groups_disagreeing_name_node_key_and_groups() -> None:
    data = {
        "groups": {
            "a": {"nodes": ["n[1-2]"], "runtime": "docker"},
            "b": {"nodes": ["n2"], "runtime": "prefix"},
        }
    }
    with pytest.raises(InputError) as err:
        parse(data)
    assert "nodes.n2.runtime" in err.value.message
    assert "'a'" in err.value.message and "'b'" in err.value.message


def test_bad_ssh_config_value_is_named() -> None:
    with pytest.raises(InputError, match=r"~/.ssh/config Host a.*port"):
        parse(
            {"nodes": {"a": {}}}, lookup=lambda name: from_paramiko(name, {"port": "nope"}, "~/.ssh/config")
        )


def test_become_local_and_routes_layer_and_are_checked() -> None:
    inv = parse(
        {
            "defaults": {"proxy_command": "nc %h %p"},
            "groups": {"gpu": {"nodes": ["gpu[1-2]"], "become": True, "become_user": "svc"}},
            "nodes": {
                "gpu2": {"jump": "login", "identity_files": ["~/a", "~/b"]},
                "here": {"connection": "local"},
            },
        }
    )
    gpu1, gpu2, here = inv.node("gpu1"), inv.node("gpu2"), inv.node("here")
    assert (gpu1.become, gpu1.become_user, gpu1.proxy_command) == (True, "svc", "nc %h %p")
    # a node's jump replaces the proxy command of the defaults: one route
    assert gpu2.proxy_command is None and gpu2.jump is not None and gpu2.key_files == ("~/a", "~/b")
    assert here.connection == "local" and here.proxy_command is None and not here.become
    with pytest.raises(InputError, match=r"nodes\.a\.become: expected true or false"):
        parse({"nodes": {"a": {"become": "yes"}}})
    with pytest.raises(InputError, match=r"nodes\.a\.become_user: expected a user name"):
        parse({"nodes": {"a": {"become_user": "root; id"}}})
    with pytest.raises(InputError, match="sets both jump and proxy_command"):
        parse({"nodes": {"a": {"jump": "b", "proxy_command": "nc %h %p"}}})
