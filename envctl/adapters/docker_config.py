"""Registry credentials the way the docker CLI finds them: ``$DOCKER_CONFIG/config.json``.

For a registry host: ``credHelpers[host]`` names a credential helper, else ``credsStore`` names
one for every registry, else ``auths[host]`` holds base64 ``auth`` (``user:password``) and maybe
an ``identitytoken``. A helper is the program ``docker-credential-NAME`` on PATH, run as
``docker-credential-NAME get`` with the server's address on stdin (never in argv), answering
``{"Username": ..., "Secret": ...}``; the user ``<token>`` means the secret is an identity token.

Secrets never appear in a message, a repr or a log: errors name the file, the key or the helper,
and what went wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envctl.errors import BuildFailure, InputError

#: the key Docker Hub's credentials are stored under (what `docker login` writes)
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
HELPER_TIMEOUT_S = 60
MAX_CONFIG_BYTES = 1 << 20
_HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NOT_FOUND = "credentials not found"
_FIX = "fix the file, or point DOCKER_CONFIG at a folder with another config.json"


@dataclass(frozen=True)
class Credentials:
    """A registry login: a user and password, or an identity (OAuth2 refresh) token."""

    username: str
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = ""  # where they came from, for messages: "credential helper docker-credential-x"


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    env = os.environ if environ is None else environ
    folder = env.get("DOCKER_CONFIG")
    return (Path(folder) if folder else Path.home() / ".docker") / "config.json"


def server_key(host: str) -> str:
    """The name a registry's credentials are stored under."""
    return DOCKER_HUB_KEY if host in DOCKER_HUB_HOSTS else host


def _hostname(key: str) -> str:
    """The docker CLI's reading of an ``auths`` key: no scheme, nothing after the host."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    return key.split("/", 1)[0]


def registry_credentials(host: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials the docker CLI would use for ``host``; None for an anonymous pull."""
    path = config_path(environ)
    config = _load(path)
    if config is None:
        return None
    wanted = _hostname(server_key(host))
    helpers = config.get("credHelpers") or {}
    if not isinstance(helpers, dict):
        raise InputError(f"{path}: credHelpers: expected a table of registry -> helper name", hint=_FIX)
    for key, name in helpers.items():
        if _hostname(str(key)) == wanted:
            return _from_helper(name, f"credHelpers.{key}", host, path, environ)
    store = config.get("credsStore")
    if store:
        return _from_helper(store, "credsStore", host, path, environ)
    auths = config.get("auths") or {}
    if not isinstance(auths, dict):
        raise InputError(f"{path}: auths: expected a table of registry -> credentials", hint=_FIX)
    for key, entry in auths.items():
        if _hostname(str(key)) == wanted:
            return _from_auths(entry, f"auths.{key}", path)
    return None


def _load(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}", hint=_FIX) from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise InputError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes, not read", hint=_FIX)
    try:
        config = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        # the position only: the text around it may be a secret
        raise InputError(
            f"{path}: not valid JSON (line {getattr(exc, 'lineno', '?')})",
            hint=_FIX,
        ) from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a JSON object", hint=_FIX)
    return config


def _from_auths(entry: object, key: str, path: Path) -> Credentials | None:
    if not isinstance(entry, dict):
        raise InputError(f"{path}: {key}: expected an object", hint=_FIX)
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InputError(
                f"{path}: {key}.auth: not base64 of USER:PASSWORD", hint="docker login again"
            ) from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise InputError(f"{path}: {key}.auth: not base64 of USER:PASSWORD", hint="docker login again")
    token = str(entry.get("identitytoken") or "")
    if not (username or password or token):
        return None  # `{}`: a login kept in a helper that is no longer configured
    return Credentials(username, password, token, f"{path} {key}")


def _from_helper(
    name: object, key: str, host: str, path: Path, environ: Mapping[str, str] | None
) -> Credentials | None:
    if not isinstance(name, str) or not _HELPER_NAME.match(name):
        raise InputError(
            f"{path}: {key}: {str(name)[:40]!r} is not a credential helper name",
            hint="a helper is named like `desktop` or `ecr-login` (the program docker-credential-NAME)",
        )
    program = f"docker-credential-{name}"
    env = dict(os.environ if environ is None else environ)
    found = shutil.which(program, path=env.get("PATH"))
    source = f"credential helper {program}"
    if found is None:
        raise InputError(
            f"{path}: {key}: {program} is not on PATH",
            hint=f"install {program}, or remove {key} from the file",
        )
    try:
        result = subprocess.run(
            [found, "get"],
            input=server_key(host).encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT_S,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BuildFailure(f"{host}: {source} did not answer in {HELPER_TIMEOUT_S} s") from None
    except OSError as exc:
        raise BuildFailure(f"{host}: cannot run {source}: {exc.strerror}") from exc
    if result.returncode != 0:
        if _NOT_FOUND in (result.stdout + result.stderr).decode("utf-8", "replace").lower():
            return None
        # its output is not shown: a helper may echo what it was handling
        raise BuildFailure(
            f"{host}: {source} exited with {result.returncode}",
            hint=f"check {program} (a fresh `docker login {host}` may fix it)",
        )
    try:
        answer = json.loads(result.stdout)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise BuildFailure(f"{host}: {source} answered something other than Username/Secret JSON") from None
    if username == "<token>":
        return Credentials("", "", secret, source)
    return Credentials(username, secret, "", source)
