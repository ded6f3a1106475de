"""``--registry-auth node``: the agent pulls with the node's own login, never the sender's.

The login is read the way the docker CLI reads it, as the user the agent runs as:
``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``; ``credHelpers[HOST]`` names a
credential helper, else ``credsStore`` one for every registry, else ``auths[HOST].auth`` holds
base64 ``USER:PASSWORD``. A helper runs as ``docker-credential-NAME get`` with the host on stdin.
On a podman node podman's own login files come first, in podman's order: ``$REGISTRY_AUTH_FILE``,
``$XDG_RUNTIME_DIR/containers/auth.json`` (``/run/containers/UID/auth.json`` without it),
``~/.config/containers/auth.json``; the first file with an entry for the host wins. No file at
all, or no entry for the host, is an anonymous pull. The login is held in memory for
the one command; errors name the file and the key, never a value.

``NodeLogin.answer`` turns a registry's 401 challenge into an ``Authorization`` value: Basic with
the login, or a bearer token from the challenge's realm scoped to ``pull`` of the repository
(GET with Basic, the distribution token spec), as ``docker pull`` does. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from envctl.node.checks import AgentError, show

MAX_CONFIG = 1 << 20  # bytes of a docker config file
MAX_TOKEN = 64 << 10  # bytes of a token service's answer
HELPER_TIMEOUT_S = 60
_HELPER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PARAM = re.compile(r'([A-Za-z]+)="([^"]*)"')
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{1,16000}")


@dataclass(frozen=True)
class Login:
    """The node's login for one registry: user and password, and where they came from."""

    username: str
    password: str = field(repr=False)
    source: str


def config_path() -> str:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (of the agent's user)."""
    folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(folder, "config.json")


def config_paths(runtime: str | None = None) -> list[str]:
    """The files a login for a registry is looked for in, in order (podman's first on podman)."""
    paths = []
    if runtime == "podman":
        if os.environ.get("REGISTRY_AUTH_FILE"):
            paths.append(os.environ["REGISTRY_AUTH_FILE"])
        run = os.environ.get("XDG_RUNTIME_DIR") or f"/run/containers/{os.getuid()}"
        paths.append(os.path.join(run, "containers", "auth.json"))
        paths.append(os.path.join(os.path.expanduser("~"), ".config", "containers", "auth.json"))
    return [*paths, config_path()]


def find_login(host: str, runtime: str | None = None) -> Login | None:
    """The node's login for ``host`` from the first of ``config_paths`` holding one, or None."""
    for path in config_paths(runtime):
        login = read_login(host, path)
        if login is not None:
            return login
    return None


def _hostname(key: str) -> str:
    """An ``auths`` key as the docker CLI reads it: no scheme, nothing after the host."""
    for scheme in ("https://", "http://"):
        key = key.removeprefix(scheme)
    return key.split("/", 1)[0]


def read_login(host: str, path: str | None = None) -> Login | None:
    """The node's login for ``host`` from its docker config; None: pull anonymously."""
    path = path or config_path()
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AgentError(f"{path}: cannot read: {exc.strerror}", "login") from None
    if len(data) > MAX_CONFIG:
        raise AgentError(f"{path}: larger than {MAX_CONFIG} bytes, not read", "login")
    try:
        config = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:  # the position only: around it may be a secret
        raise AgentError(f"{path}: not valid JSON (line {getattr(exc, 'lineno', '?')})", "login") from None
    if not isinstance(config, dict):
        raise AgentError(f"{path}: expected a JSON object", "login")
    helpers = config.get("credHelpers") or {}
    if not isinstance(helpers, dict):
        raise AgentError(f"{path}: credHelpers: expected an object of registry -> helper name", "login")
    for key, name in helpers.items():
        if _hostname(str(key)) == host:
            return _from_helper(name, f"credHelpers.{key}", host, path)
    if config.get("credsStore"):
        return _from_helper(config["credsStore"], "credsStore", host, path)
    auths = config.get("auths") or {}
    if not isinstance(auths, dict):
        raise AgentError(f"{path}: auths: expected an object of registry -> login", "login")
    for key, entry in auths.items():
        if _hostname(str(key)) == host:
            return _from_auths(entry, f"auths.{show(str(key), 80)}", path)
    return None


def _from_auths(entry: object, key: str, path: str) -> Login | None:
    if not isinstance(entry, dict):
        raise AgentError(f"{path}: {key}: expected an object", "login")
    if not entry.get("auth"):
        if entry.get("identitytoken"):
            raise AgentError(
                f"{path}: {key} holds only an identity token, which the agent does not use", "login"
            )
        return None  # `{}`: a login kept in a helper that is no longer configured
    try:
        decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AgentError(f"{path}: {key}.auth: not base64 of USER:PASSWORD", "login") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise AgentError(f"{path}: {key}.auth: not base64 of USER:PASSWORD", "login")
    return Login(username, password, f"{path} {key}")


def _from_helper(name: object, key: str, host: str, path: str) -> Login | None:
    if not isinstance(name, str) or not _HELPER.fullmatch(name):
        raise AgentError(f"{path}: {key}: {show(str(name), 40)} is not a credential helper name", "login")
    program = f"docker-credential-{name}"
    found = shutil.which(program)
    if found is None:
        raise AgentError(f"{path}: {key}: {program} is not on this node's PATH", "login")
    try:
        result = subprocess.run(
            [found, "get"], input=host.encode(), capture_output=True, timeout=HELPER_TIMEOUT_S, check=False
        )
    except (subprocess.TimeoutExpired, OSError):
        raise AgentError(f"{path}: {key}: {program} did not answer", "login") from None
    if result.returncode != 0:
        if b"credentials not found" in (result.stdout + result.stderr).lower():
            return None
        raise AgentError(f"{path}: {key}: {program} exited with {result.returncode}", "login")
    try:
        answer = json.loads(result.stdout)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise AgentError(f"{path}: {key}: {program} answered no Username/Secret", "login") from None
    if username == "<token>":
        raise AgentError(
            f"{path}: {key}: {program} holds an identity token, which the agent does not use", "login"
        )
    return Login(username, secret, f"{program} ({path} {key})")


class NodeLogin:
    """What the agent sends to one registry with the node's own login (see the module docstring)."""

    def __init__(
        self,
        host: str,
        login: Login | None,
        context: ssl.SSLContext | None,
        timeout: float,
        looked_in: list[str] | None = None,
    ) -> None:
        self.host = host
        self.login = login
        self._looked_in = looked_in or [config_path()]
        self._context = context
        self._timeout = timeout

    def who(self) -> str:
        """For messages: where the login came from, or that there was none."""
        if self.login is None:
            return f"an anonymous pull (no login for {self.host} in {', '.join(self._looked_in)})"
        return f"the login from {self.login.source}"

    def _basic(self) -> str | None:
        if self.login is None:
            return None
        pair = f"{self.login.username}:{self.login.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def answer(self, challenge: str | None, repository: str) -> str | None:
        """The ``Authorization`` to repeat a request with, or None when there is nothing to try."""
        scheme, _, rest = (challenge or "").strip().partition(" ")
        params = dict(_PARAM.findall(rest))
        if scheme.lower() == "basic":
            return self._basic()
        if scheme.lower() != "bearer" or not params.get("realm"):
            return None
        return "Bearer " + self._token(params, f"repository:{repository}:pull")

    def _token(self, params: dict[str, str], scope: str) -> str:
        realm = params["realm"]
        parts = urllib.parse.urlsplit(realm)
        shown = show(urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), 120)
        if parts.scheme not in ("https", "http"):
            raise AgentError(f"{self.host}: token realm {shown} is not http(s)", "auth")
        fields = [("scope", scope)] + ([("service", params["service"])] if params.get("service") else [])
        separator = "&" if parts.query else "?"
        request = urllib.request.Request(
            realm + separator + urllib.parse.urlencode(fields), headers={"User-Agent": "envctl-agent"}
        )
        basic = self._basic()
        if basic:
            request.add_unredirected_header("Authorization", basic)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._context) as response:
                data = response.read(MAX_TOKEN + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise AgentError(
                f"{self.host}: token service {shown} refused {self.who()} ({exc.code})", "auth"
            ) from None
        except (OSError, urllib.error.URLError) as exc:
            raise AgentError(
                f"{self.host}: cannot reach token service {shown}: {show(str(exc))}", "auth"
            ) from None
        try:
            doc = json.loads(data) if len(data) <= MAX_TOKEN else None
            token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        except ValueError:
            token = None
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise AgentError(f"{self.host}: token service {shown} answered no usable token", "auth")
        return token
