import pytest

from envctl.core.ssh_options import expand_proxy_command, from_openssh, from_paramiko, parse_ssh_g
from envctl.errors import InputError

BASELINE = parse_ssh_g(
    "user me\nhostname envctl-defaults.invalid\nport 22\nidentityfile ~/.ssh/id_rsa\n"
    "identityfile ~/.ssh/id_ed25519\nuserknownhostsfile ~/.ssh/known_hosts ~/.ssh/known_hosts2\n"
    "globalknownhostsfile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2\nproxyjump none\n"
    "stricthostkeychecking ask\nconnecttimeout none\n"
)


def resolved(extra: str, name: str = "gpu1") -> dict[str, list[str]]:
    text = "\n".join(f"{k} {' '.join(v)}" for k, vs in BASELINE.items() for v in [vs] if k != "hostname")
    options = parse_ssh_g(text.replace("identityfile ~/.ssh/id_rsa ~/.ssh/id_ed25519", ""))
    options.update({"hostname": [name], "identityfile": BASELINE["identityfile"]})
    options.update(parse_ssh_g(extra))
    return options


def test_only_what_the_configuration_sets_becomes_a_setting() -> None:
    settings = from_openssh("gpu1", resolved(""), BASELINE, "ssh -G")
    assert settings.values == {} and settings.warnings == ()


def test_ssh_g_values_map_and_unhonoured_options_are_warned() -> None:
    extra = (
        "hostname 10.0.0.1\nport 2222\nuser ops\nidentityfile ~/.ssh/a\nidentityfile ~/.ssh/b\n"
        "proxyjump ssh://bastion,hop2\nuserknownhostsfile /k/user /k/more\n"
        "globalknownhostsfile /k/global\nstricthostkeychecking accept-new\nconnecttimeout 7\n"
        "hostkeyalias elsewhere\nciphers aes128-ctr\n"
    )
    settings = from_openssh("gpu1", resolved(extra), BASELINE, "ssh -G")
    assert settings.values == {
        "host": "10.0.0.1",
        "port": "2222",
        "user": "ops",
        "identity_files": ["~/.ssh/a", "~/.ssh/b"],
        "jump": "bastion,hop2",
        "known_hosts": "/k/user",
        "global_known_hosts": ["/k/more", "/k/global"],
        "accept_new_host_keys": True,
        "connect_timeout": 7,
    }
    assert [option for option, _ in settings.warnings] == ["HostKeyAlias", "Ciphers"]


def test_proxy_command_when_no_jump_and_bad_timeout_is_named() -> None:
    settings = from_openssh("n", resolved("proxycommand ssh -W %h:%p gw", "n"), BASELINE, "ssh -G")
    assert settings.values == {"proxy_command": "ssh -W %h:%p gw"}
    with pytest.raises(InputError, match="Host n: ConnectTimeout"):
        from_openssh("n", resolved("connecttimeout soon", "n"), BASELINE, "ssh -G")


def test_paramiko_include_is_reported() -> None:
    settings = from_paramiko("n", {"hostname": "n", "include": "~/.ssh/conf.d/*"}, "~/.ssh/config")
    assert settings.values == {} and settings.warnings[0][0] == "Include"


def test_proxy_command_tokens_are_expanded_and_unsafe_values_refused() -> None:
    assert (
        expand_proxy_command("nc -x p %h %p # %r %n %%", host="h1", port=22, user="u", name="n1")
        == "nc -x p h1 22 # u n1 %"
    )
    with pytest.raises(InputError, match="token %C"):
        expand_proxy_command("ssh %C", host="h", port=22, user="u", name="n")
    with pytest.raises(InputError, match="not safe"):
        expand_proxy_command("nc %h %p", host="h;rm -rf /", port=22, user="u", name="n")
