"""``--via registry://...``, a group's ``registry_mirror`` and the inventory's ``registry``: read
once, checked before anything reaches a URL, and what ``--fanout auto`` makes of them."""

from __future__ import annotations

import pytest

from envctl.core.fanout_mode import choose
from envctl.core.inventory import parse_inventory
from envctl.core.node import NodeSpec
from envctl.core.registry_target import inventory_registry, parse_mirror, parse_via
from envctl.errors import InputError


def test_a_registry_url_names_host_port_and_repository() -> None:
    target = parse_via("registry://10.0.0.5:5000/ml/envs")
    assert (target.host, target.repository) == ("10.0.0.5:5000", "ml/envs")
    assert target.base == "https://10.0.0.5:5000/v2/ml/envs"
    assert parse_via("registry://harbor.example.com/envs", insecure=True).base.startswith("http://")
    assert str(target) == "registry://10.0.0.5:5000/ml/envs"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("https://reg/envs", "expected registry://"),
        ("registry://reg", "names no repository"),
        ("registry://reg/envs:latest", "names no repository"),
        ("registry://reg:0/envs", "not a registry host"),
        ("registry://reg/Envs", "is not allowed"),
        ("registry://re g/envs", "not a registry host"),
        ("registry://reg/../envs", "is not allowed"),
    ],
)
def test_bad_registry_urls_are_one_line_input_errors(text: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        parse_via(text)


def test_a_mirror_is_an_http_root() -> None:
    assert parse_mirror("http://10.0.0.9:5001/", "groups.r1.registry_mirror") == "http://10.0.0.9:5001"
    for bad in ("10.0.0.9:5001", "ftp://m", "http://u:p@m", "http://m/path"):
        with pytest.raises(InputError, match=r"groups\.r1\.registry_mirror"):
            parse_mirror(bad, "groups.r1.registry_mirror")


def test_the_inventory_reads_the_registry_and_each_groups_mirror() -> None:
    doc = {
        "defaults": {"registry": "registry://reg.example:5000/envs"},
        "groups": {
            "rack1": {"nodes": ["a[1-2]"], "registry_mirror": "http://10.0.1.1:5001"},
            "rack2": {"nodes": ["b1"]},
        },
    }
    inv = parse_inventory(doc, source="inv.toml")
    mirrors = {n.name: n.registry_mirror for n in inv.nodes}
    assert mirrors == {"a1": "http://10.0.1.1:5001", "a2": "http://10.0.1.1:5001", "b1": None}
    assert inventory_registry(inv.nodes) == "registry://reg.example:5000/envs"
    with pytest.raises(InputError, match=r"inv\.toml: groups\.rack2\.registry_mirror: expected http"):
        parse_inventory(
            {"groups": {"rack2": {"nodes": ["b1"], "registry_mirror": "nope"}}}, source="inv.toml"
        )


def test_nodes_that_name_different_registries_are_refused() -> None:
    nodes = [
        NodeSpec("a", "a", registry="registry://r1/envs"),
        NodeSpec("b", "b", registry="registry://r2/envs"),
    ]
    with pytest.raises(InputError, match="name different registries"):
        inventory_registry(nodes)
    assert inventory_registry([NodeSpec("a", "a")]) is None


def test_auto_picks_the_registry_the_inventory_names() -> None:
    choice = choose("auto", 3, None, "registry://reg/envs")
    assert (choice.mode, choice.why) == ("registry", "the inventory names a registry")
    assert choose("registry", 3, None, "registry://reg/envs").why == "asked for"
    assert (
        choose("auto", 3, "registry://other/envs", "registry://reg/envs").why
        == "a registry was given (--via)"
    )
    assert choose("direct", 3, None, "registry://reg/envs").mode == "direct"


def test_the_inventory_reads_registry_ca_and_nodes_must_agree() -> None:
    from envctl.core.registry_target import inventory_registry_ca

    doc = {"defaults": {"registry_ca": "~/ca/harbor.pem"}, "nodes": {"a": {}, "b": {}}}
    inv = parse_inventory(doc, source="inv.toml")
    assert inventory_registry_ca(inv.nodes) == "~/ca/harbor.pem"
    assert inventory_registry_ca([NodeSpec("a", "a")]) is None
    with pytest.raises(InputError, match="different registry_ca"):
        inventory_registry_ca(
            [NodeSpec("a", "a", registry_ca="x.pem"), NodeSpec("b", "b", registry_ca="y.pem")]
        )
    with pytest.raises(InputError, match=r"inv\.toml: defaults\.registry_ca: expected a non-empty string"):
        parse_inventory({"defaults": {"registry_ca": 3}, "nodes": {"a": {}}}, source="inv.toml")
