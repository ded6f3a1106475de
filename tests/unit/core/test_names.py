"""The one check of names, digests and URLs (findings 4, 11, 13, 14): full matches only, every
refusal one line naming where the value came from."""

from __future__ import annotations

import pytest

from envctl.core.delivery import check_env_name
from envctl.core.names import (
    decimal,
    reference_parts,
    valid_digest,
    valid_md5,
    valid_name,
    valid_sha256,
    valid_url,
)
from envctl.errors import InputError, LockError

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize("name", ["demo", "torch-train-h100", "a", "x.y_z-1", "a" * 63])
def test_environment_names(name: str) -> None:
    assert valid_name("env", name, "--name") == name == check_env_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "nl\n",
        "../../etc",
        "..",
        ".",
        "a/b",
        "Demo",
        "",
        "-x",
        "a b",
        "a" * 64,
        "t\u00f6rch",
        "x\x00",
        None,
        3,
    ],
)
def test_environment_names_that_would_be_paths_or_bad_tags(name: object) -> None:
    with pytest.raises(InputError) as info:
        valid_name("env", name, "--name")
    assert info.value.message.startswith("--name: ") and info.value.hint and "\n" not in info.value.message


@pytest.mark.parametrize(
    ("tag", "parts"),
    [
        ("envctl/demo:0123456789ab", ("envctl/demo", "0123456789ab")),
        ("team/torch", ("team/torch", "latest")),
        ("localhost:5000/a/b:v1", ("localhost:5000/a/b", "v1")),
        ("registry.example.com/team/torch-train:v3", ("registry.example.com/team/torch-train", "v3")),
        ("Reg.Example:443/x", ("Reg.Example:443/x", "latest")),
    ],
)
def test_image_references(tag: str, parts: tuple[str, str]) -> None:
    assert reference_parts(valid_name("tag", tag, "--tag")) == parts


@pytest.mark.parametrize(
    "tag",
    ["Bad Tag;x", "a:b:c", "UPPER/x", "x\n", "../x", "a//b", "-a", "a:" + "t" * 129, "x:" + "\u00b2", ""],
)
def test_tags_outside_dockers_grammar(tag: str) -> None:
    with pytest.raises(InputError, match="--tag: image name"):
        valid_name("tag", tag, "--tag")


@pytest.mark.parametrize("name", ["torch-2.5.1+cu121-cp311-cp311-linux_x86_64.whl", "zlib-1.3.1-h0_0.conda"])
def test_file_names(name: str) -> None:
    assert valid_name("file", name, "url") == name


@pytest.mark.parametrize("name", ["../evil.whl", "..", ".hidden", "a/b.whl", "x.whl\n", "-rf", "", "a\\b"])
def test_file_names_that_are_paths(name: str) -> None:
    with pytest.raises(InputError):
        valid_name("file", name, "url")


def test_hex_digests_are_full_matches() -> None:
    assert valid_sha256(HEX, "x") == HEX and valid_md5(HEX[:32], "x") == HEX[:32]
    assert valid_digest(f"sha256:{HEX}", "x") == f"sha256:{HEX}"
    for bad in (f"{HEX}\n", "../../../tmp/x/evil.whl", HEX.upper(), HEX[:63], None, HEX + "0"):
        with pytest.raises(LockError):
            valid_sha256(bad, "lock", LockError)
    for bad in (f"sha256:{HEX}\n", f"sha512:{HEX}", HEX):
        with pytest.raises(InputError):
            valid_digest(bad, "ref")


@pytest.mark.parametrize(
    "url",
    [
        "https://files.pythonhosted.org/packages/aa/bb/six-1.16.0-py2.py3-none-any.whl",
        "https://download.pytorch.org/whl/cu121/torch-2.5.1%2Bcu121-cp311-cp311-linux_x86_64.whl",
        "http://127.0.0.1:8080/simple/",
        "file:///srv/wheels/six-1.16.0-py2.py3-none-any.whl",
        "https://files.example/\u00fcn\u00ef/filelock-3.16.1.tar.gz",
    ],
)
def test_urls(url: str) -> None:
    assert valid_url(url, "x") == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://x/a.whl\n--extra-index-url http://evil/", "control character"),
        ("https://x/a b.whl", "a space"),
        ("javascript:alert(1)", "has scheme 'javascript'"),
        ("ftp://x/a.whl", "has scheme 'ftp'"),
        ("https:///a.whl", "names no host"),
        ("file:relative/a.whl", "not an absolute file"),
        ("https://x/a.whl#egg=evil", "fragment"),
        ("https://x:99999999/a.whl", "cannot be parsed"),
        ("https://x/a\u202e.whl", "control character"),  # a bidi override
        ("not a url", "a space"),
        ("", "is not a URL"),
    ],
)
def test_urls_that_would_inject_or_mislead(url: str, problem: str) -> None:
    with pytest.raises(InputError) as info:
        valid_url(url, "--index-url")
    assert problem in info.value.message and "\n" not in info.value.message


@pytest.mark.parametrize(
    ("text", "value"), [("22", 22), ("0", 0), ("\u00b2", None), ("\u0663", None), ("", None)]
)
def test_decimal_takes_ascii_digits_only(text: str, value: int | None) -> None:
    assert decimal(text) == value


def test_decimal_never_converts_a_huge_number() -> None:
    assert decimal("9" * 5000) is None and decimal("9" * 20) is None and decimal("9" * 19) == int("9" * 19)
