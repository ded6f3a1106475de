"""Credentials come from DOCKER_CONFIG the way the docker CLI finds them, and never show."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from envctl.adapters.docker_config import Credentials, config_path, registry_credentials
from envctl.errors import BuildFailure, InputError

SECRET = "s3cret-do-not-show"


def _config(tmp_path: Path, config: object) -> dict[str, str]:
    folder = tmp_path / "docker"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return {"DOCKER_CONFIG": str(folder), "PATH": str(tmp_path / "bin")}


def _helper(tmp_path: Path, name: str, body: str) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    script = folder / f"docker-credential-{name}"
    script.write_text(f'#!/bin/sh\necho "$*" >> {folder}/argv.log\nread -r server || true\n{body}\n')
    script.chmod(0o755)
    return folder / "argv.log"


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_config_path_honours_docker_config(tmp_path: Path) -> None:
    assert config_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"
    assert config_path({}).name == "config.json" and config_path({}).parent.name == ".docker"


def test_no_file_or_no_entry_is_an_anonymous_pull(tmp_path: Path) -> None:
    assert registry_credentials("ghcr.io", {"DOCKER_CONFIG": str(tmp_path / "none")}) is None
    env = _config(tmp_path, {"auths": {"nvcr.io": {"auth": _auth("$oauthtoken", SECRET)}}})
    assert registry_credentials("ghcr.io", env) is None
    assert registry_credentials("nvcr.io", _config(tmp_path, {"auths": {"nvcr.io": {}}})) is None


def test_auths_entries_by_host_with_or_without_scheme(tmp_path: Path) -> None:
    env = _config(
        tmp_path,
        {
            "auths": {
                "https://nvcr.io/v1/": {"auth": _auth("$oauthtoken", SECRET)},
                "https://index.docker.io/v1/": {"auth": _auth("bob", "hub:pw")},
                "127.0.0.1:5000": {"auth": _auth("carol", "x"), "identitytoken": "refresh-1"},
            }
        },
    )
    nvcr = registry_credentials("nvcr.io", env)
    assert nvcr is not None and (nvcr.username, nvcr.password) == ("$oauthtoken", SECRET)
    assert "config.json auths.https://nvcr.io/v1/" in nvcr.source
    hub = registry_credentials("docker.io", env)
    assert hub is not None and (hub.username, hub.password) == ("bob", "hub:pw")  # first ':' splits
    local = registry_credentials("127.0.0.1:5000", env)
    assert local is not None and local.identity_token == "refresh-1"


def test_secrets_never_show_in_repr(tmp_path: Path) -> None:
    creds = Credentials("alice", SECRET, SECRET + "-token", "somewhere")
    assert SECRET not in repr(creds) and SECRET not in str(creds)


def test_a_helper_gets_the_server_on_stdin_not_in_argv(tmp_path: Path) -> None:
    log = _helper(
        tmp_path,
        "fake",
        f'[ "$server" = ghcr.io ] && printf \'{{"Username":"alice","Secret":"{SECRET}"}}\' && exit 0\n'
        'echo "credentials not found in native keychain"; exit 1',
    )
    env = _config(tmp_path, {"credsStore": "fake", "auths": {"ghcr.io": {"auth": _auth("old", "old")}}})
    creds = registry_credentials("ghcr.io", env)
    assert creds == Credentials("alice", SECRET, "", "credential helper docker-credential-fake")
    assert log.read_text() == "get\n"
    assert registry_credentials("quay.io", env) is None  # "not found": anonymous


def test_cred_helpers_win_over_creds_store(tmp_path: Path) -> None:
    _helper(tmp_path, "store", "exit 3")
    _helper(tmp_path, "gh", f'printf \'{{"Username":"<token>","Secret":"{SECRET}"}}\'')
    env = _config(tmp_path, {"credsStore": "store", "credHelpers": {"ghcr.io": "gh"}})
    creds = registry_credentials("ghcr.io", env)
    assert creds is not None and creds.identity_token == SECRET and creds.password == ""
    with pytest.raises(BuildFailure) as info:
        registry_credentials("nvcr.io", env)
    assert str(info.value) == "nvcr.io: credential helper docker-credential-store exited with 3"


def test_a_failing_helper_does_not_echo_its_output(tmp_path: Path) -> None:
    _helper(tmp_path, "leaky", f"echo 'oops {SECRET}' >&2; exit 1")
    env = _config(tmp_path, {"credsStore": "leaky"})
    with pytest.raises(BuildFailure) as info:
        registry_credentials("ghcr.io", env)
    assert SECRET not in str(info.value) and SECRET not in str(info.value.hint)
    _helper(tmp_path, "garbled", f"echo 'Username={SECRET}'")
    with pytest.raises(BuildFailure, match="other than Username/Secret JSON") as info:
        registry_credentials("ghcr.io", _config(tmp_path, {"credsStore": "garbled"}))
    assert SECRET not in str(info.value)


def test_a_missing_helper_names_the_key_and_the_program(tmp_path: Path) -> None:
    env = _config(tmp_path, {"credHelpers": {"ghcr.io": "nothere"}})
    with pytest.raises(InputError) as info:
        registry_credentials("ghcr.io", env)
    assert "credHelpers.ghcr.io: docker-credential-nothere is not on PATH" in str(info.value)
    with pytest.raises(InputError, match="is not a credential helper name"):
        registry_credentials("ghcr.io", _config(tmp_path, {"credsStore": "../../bin/sh"}))


def test_malformed_files_name_file_and_key_without_content(tmp_path: Path) -> None:
    folder = tmp_path / "docker"
    folder.mkdir()
    (folder / "config.json").write_text('{"auths": {"ghcr.io": {"auth": "' + SECRET + '"}')
    with pytest.raises(InputError) as info:
        registry_credentials("ghcr.io", {"DOCKER_CONFIG": str(folder)})
    assert "config.json: not valid JSON" in str(info.value) and SECRET not in str(info.value)
    env = _config(tmp_path, {"auths": {"ghcr.io": {"auth": SECRET}}})
    with pytest.raises(InputError) as info:
        registry_credentials("ghcr.io", env)
    assert "auths.ghcr.io.auth: not base64 of USER:PASSWORD" in str(info.value)
    assert SECRET not in str(info.value)
    with pytest.raises(InputError, match="auths: expected a table"):
        registry_credentials("ghcr.io", _config(tmp_path, {"auths": ["x"]}))
