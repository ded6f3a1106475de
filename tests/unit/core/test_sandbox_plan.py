import pytest

from envctl.core import sandbox, toml_out
from envctl.core.inventory import parse_inventory
from envctl.errors import InputError


def test_plan_names_addresses_and_paths() -> None:
    plan = sandbox.plan_sandbox(3, directory="/var/tmp/sbx", prefix="ps", subnet="10.251.7.0/24")
    assert plan.bridge == "ps-br0" and plan.bridge_address == "10.251.7.1/24"
    first = plan.nodes[0]
    assert (first.name, first.netns, first.veth, first.address) == (
        "n1",
        "ps-n1",
        "ps-v1",
        "10.251.7.2",
    )
    assert plan.nodes[2].root == "/var/tmp/sbx/n3"
    assert ("/var/tmp/sbx/n3/store", "/var/lib/envctl") in plan.nodes[2].mounts()
    assert sandbox.plan_from_dict(plan.to_dict(), "state") == plan


def test_inventory_document_reads_back_as_an_inventory() -> None:
    plan = sandbox.plan_sandbox(2, directory="/srv/s", prefix="ps", runtime="docker")
    text = toml_out.dumps(sandbox.inventory_document(plan))
    import tomllib

    inv = parse_inventory(tomllib.loads(text), source="inv")
    assert [n.name for n in inv.nodes] == ["n1", "n2"]
    assert inv.node("n2").docker_host == "unix:///srv/s/n2/docker.sock"
    assert inv.node("n1").known_hosts == "/srv/s/known_hosts"


def test_launch_script_quotes_paths() -> None:
    plan = sandbox.plan_sandbox(1, directory="/srv/a b", prefix="ps")
    script = sandbox.sshd_launch_script(plan.nodes[0])
    assert "mount --bind '/srv/a b/n1/store' /var/lib/envctl" in script
    assert script.endswith("-E '/srv/a b/n1/sshd.log'")
    assert "Subsystem sftp internal-sftp" in sandbox.sshd_config(plan.nodes[0])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"count": 0}, "--nodes"),
        ({"count": 500}, "--nodes"),
        ({"prefix": "Bad-Prefix"}, "--prefix"),
        ({"runtime": "podman"}, "--runtime"),
        ({"rate": "fast"}, "--rate"),
        ({"rate": "10bit"}, "--rate"),
        ({"directory": "relative"}, "--dir"),
        ({"directory": "/tmp/sbx"}, "/tmp"),
        ({"directory": "/var/lib/envctl/sbx"}, "/var/lib/envctl"),
        ({"directory": "/" + "x" * 60}, "--dir"),
        ({"subnet": "10.0.0.0/30", "count": 5}, "too small"),
        ({"subnet": "10.0.0.1/24"}, "--subnet"),
    ],
)
def test_bad_options_are_named(kwargs: dict[str, object], words: str) -> None:
    args = {"count": 2, "directory": "/var/tmp/sbx", **kwargs}
    count = args.pop("count")
    with pytest.raises(InputError, match=words):
        sandbox.plan_sandbox(count, **args)  # type: ignore[arg-type]


def test_rates_and_burst() -> None:
    assert sandbox.rate_bits("1gbit") == 10**9
    assert sandbox.rate_bits("2.5mbit") == 2_500_000
    assert sandbox.tbf_burst("100mbit") == 256 * 1024
    assert sandbox.tbf_burst("10gbit") == 12_500_000


def test_launch_script_covers_the_machines_shell_rc_with_the_nodes_own() -> None:
    """A command over SSH sources root's ~/.bashrc: the machine's own (pyenv, conda init) is
    covered in the node's namespace by the node's empty one, only where it exists."""
    plan = sandbox.plan_sandbox(1, directory="/srv/s", prefix="ps")
    script = sandbox.sshd_launch_script(plan.nodes[0], shell_rcs=["/root/.bashrc", "/h o/.zshenv"])
    assert "{ [ ! -f /root/.bashrc ] || mount --bind /srv/s/n1/ssh/shell-rc /root/.bashrc; }" in script
    assert "{ [ ! -f '/h o/.zshenv' ] || mount --bind /srv/s/n1/ssh/shell-rc '/h o/.zshenv'; }" in script
    assert script.index("shell-rc") < script.index("exec ")  # before sshd starts
    assert "shell-rc" not in sandbox.sshd_launch_script(plan.nodes[0])
