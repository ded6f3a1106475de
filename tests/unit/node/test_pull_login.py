"""``--registry-auth node`` and ``--registry-ca`` on the agent's side: the node's own docker login
read from its config (every malformed file a one-line error naming it), answered to Basic and
bearer challenges, and a CA handed in the request trusted from memory for HTTPS."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "build"))
import registry_services as rs
from nd_fetch import blob, fetch
from nd_registry import MiniRegistry

from envctl.node.checks import AgentError
from envctl.node.pull_login import read_login

HOST = "reg.example:5000"


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def config(tmp_path: Path, doc: Any) -> Path:
    folder = tmp_path / "docker"
    folder.mkdir(exist_ok=True)
    path = folder / "config.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


# ------------------------------------------------------------------ reading the node's config
def test_auths_entries_are_read_as_the_docker_cli_reads_them(tmp_path: Path) -> None:
    path = config(tmp_path, {"auths": {f"https://{HOST}/v1/": {"auth": basic("bob", "pw:with:colons")}}})
    login = read_login(HOST, str(path))
    assert login is not None and (login.username, login.password) == ("bob", "pw:with:colons")
    assert str(path) in login.source and "pw" not in repr(login)
    assert read_login("other.example", str(path)) is None  # no entry: an anonymous pull
    assert read_login(HOST, str(tmp_path / "absent.json")) is None
    assert read_login(HOST, str(config(tmp_path, {"auths": {HOST: {}}}))) is None


def test_docker_config_env_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config(tmp_path, {"auths": {HOST: {"auth": basic("ann", "x")}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    login = read_login(HOST)
    assert login is not None and login.username == "ann"


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ('{"auths": {', "not valid JSON (line 1)"),
        ("[1, 2]", "expected a JSON object"),
        ({"auths": ["x"]}, "auths: expected an object"),
        ({"auths": {HOST: "x"}}, f"auths.'{HOST}': expected an object"),
        ({"auths": {HOST: {"auth": "%%%not-base64"}}}, "auth: not base64 of USER:PASSWORD"),
        (
            {"auths": {HOST: {"auth": base64.b64encode(b"no-colon-secret").decode()}}},
            "not base64 of USER:PASSWORD",
        ),
        ({"auths": {HOST: {"identitytoken": "tok-secret"}}}, "only an identity token"),
        ({"credHelpers": [1]}, "credHelpers: expected an object"),
        ({"credHelpers": {HOST: "../../bin/sh"}}, "is not a credential helper name"),
        (
            {"credsStore": "envctl-test-absent"},
            "docker-credential-envctl-test-absent is not on this node's PATH",
        ),
    ],
)
def test_a_malformed_config_is_one_line_naming_the_file(tmp_path: Path, doc: Any, says: str) -> None:
    path = config(tmp_path, doc)
    with pytest.raises(AgentError) as caught:
        read_login(HOST, str(path))
    message = str(caught.value)
    assert caught.value.kind == "login" and message.startswith(f"{path}: ") and says in message, message
    assert "\n" not in message and "secret" not in message


def test_a_credential_helper_on_the_node_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "bin" / "docker-credential-rctest"
    helper.parent.mkdir()
    log = tmp_path / "asked"
    helper.write_text(f'#!/bin/sh\ncat > {log}\necho \'{{"Username": "h-user", "Secret": "h-pw"}}\'\n')
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    login = read_login(HOST, str(config(tmp_path, {"credHelpers": {HOST: "rctest"}})))
    assert login is not None and (login.username, login.password) == ("h-user", "h-pw")
    assert log.read_text() == HOST  # the host on stdin, never in argv


# ------------------------------------------------------------------ fetch with the node's login
@pytest.fixture
def node_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    yield tmp_path / "docker" / "config.json"


@pytest.mark.parametrize("token", [None, "tok-0a1b2c"])
def test_node_login_answers_basic_and_bearer_challenges(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    node_config: Path,
    token: str | None,
) -> None:
    reg = MiniRegistry(user="nodeuser", password="node-pw", token=token)
    try:
        config(tmp_path, {"auths": {reg.address: {"auth": basic("nodeuser", "node-pw")}}})
        blobs = [blob(reg, 40_000, 1), blob(reg, 30, 2)]
        request = {
            "sources": [f"http://{reg.address}/v2/envs/demo"],
            "node_login": reg.address,
            "blobs": blobs,
        }
        code, doc = fetch(tmp_path, capsys, monkeypatch, request)
        assert code == 0 and doc["fetched"] == [b["digest"] for b in blobs], doc
        sent = [auth for method, _, _, auth in reg.seen if method == "GET" and auth]
        want = f"Bearer {token}" if token else "Basic " + basic("nodeuser", "node-pw")
        assert set(sent) - {"Basic " + basic("nodeuser", "node-pw")} <= {want} and want in sent
        if token:  # one token for the whole fetch, scoped to pulling the repository
            assert (
                len(reg.token_scopes) == 1 and "scope=repository%3Aenvs%2Fdemo%3Apull" in reg.token_scopes[0]
            )
    finally:
        reg.close()


def test_node_login_refused_or_missing_is_an_auth_error_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, node_config: Path
) -> None:
    reg = MiniRegistry(user="nodeuser", password="node-pw")
    try:
        request = {"sources": [f"http://{reg.address}/v2/envs/demo"], "node_login": reg.address,
                   "blobs": [blob(reg, 10)]}  # fmt: skip
        code, doc = fetch(tmp_path, capsys, monkeypatch, request)  # no config at all
        assert code == 3 and doc["kind"] == "auth" and "an anonymous pull" in doc["error"], doc
        assert str(node_config) in doc["error"]
        config(tmp_path, {"auths": {reg.address: {"auth": basic("nodeuser", "wrong-pw")}}})
        code, doc = fetch(tmp_path, capsys, monkeypatch, request)
        assert code == 3 and doc["kind"] == "auth" and str(node_config) in doc["error"], doc
        assert "wrong-pw" not in doc["error"]
        config(tmp_path, "{not json")
        code, doc = fetch(tmp_path, capsys, monkeypatch, request)
        assert code == 3 and doc["kind"] == "login" and doc["error"].startswith(str(node_config)), doc
    finally:
        reg.close()


def test_node_login_comes_without_the_senders_auth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    request = {"sources": ["http://h/v2/r"], "node_login": "h", "auth": "Basic eDp5", "blobs": []}
    code, doc = fetch(tmp_path, capsys, monkeypatch, request)
    assert code == 3 and doc["kind"] == "protocol", doc


# ------------------------------------------------------------------ a private CA in the request
def test_a_ca_in_the_request_is_trusted_from_memory_and_a_wrong_one_is_a_tls_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tls, other = rs.make_tls(tmp_path / "tls"), rs.make_tls(tmp_path / "other")
    reg = MiniRegistry(tls=tls.server_context())
    try:
        item = blob(reg, 20_000)
        request: dict[str, Any] = {"sources": [f"https://{reg.address}/v2/envs/demo"], "blobs": [item]}
        code, doc = fetch(tmp_path, capsys, monkeypatch, request)  # the system's store alone
        assert (
            code == 3 and doc["kind"] == "tls" and "does not trust the registry's certificate" in doc["error"]
        )
        code, doc = fetch(tmp_path, capsys, monkeypatch, {**request, "ca": other.ca.read_text()})
        assert code == 3 and doc["kind"] == "tls", doc
        code, doc = fetch(tmp_path, capsys, monkeypatch, {**request, "ca": tls.ca.read_text()})
        assert code == 0 and doc["fetched"] == [item["digest"]], doc
        assert not any(
            b"BEGIN CERTIFICATE" in p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file()
        )
    finally:
        reg.close()


@pytest.mark.parametrize("ca", ["", "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", 5])
def test_a_bad_ca_is_a_protocol_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ca: Any
) -> None:
    code, doc = fetch(tmp_path, capsys, monkeypatch, {"sources": ["https://h/v2/r"], "ca": ca, "blobs": []})
    assert code == 3 and doc["kind"] == "protocol" and "ca:" in doc["error"], doc


def test_podman_nodes_read_podmans_login_files_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from envctl.node.pull_login import config_paths, find_login

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    config(tmp_path, {"auths": {HOST: {"auth": basic("docker-user", "a")}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    podman = tmp_path / "run" / "containers" / "auth.json"
    podman.parent.mkdir(parents=True)
    podman.write_text(json.dumps({"auths": {HOST: {"auth": basic("podman-user", "b")}}}))
    assert config_paths("podman") == [
        str(podman),
        str(tmp_path / "home" / ".config" / "containers" / "auth.json"),
        str(tmp_path / "docker" / "config.json"),
    ]
    assert (find_login(HOST, "podman") or pytest.fail("no login")).username == "podman-user"
    assert (find_login(HOST, "docker") or pytest.fail("no login")).username == "docker-user"
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps({"auths": {"other.example": {"auth": basic("x", "y")}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(explicit))  # no entry for HOST: the next file
    assert (find_login(HOST, "podman") or pytest.fail("no login")).username == "podman-user"
    explicit.write_text("{")
    with pytest.raises(AgentError, match=f"^{explicit}: not valid JSON"):
        find_login(HOST, "podman")
