"""Authorization for one registry: Basic, or the bearer tokens of the distribution token spec.

A registry says what it wants in a 401's ``WWW-Authenticate``. ``Bearer realm=...,service=...,
scope=...`` (Docker Hub, ghcr.io, nvcr.io, a distribution registry with ``auth: token``) means:
ask the realm for a token for that service and scope, anonymously or with the user's login (Basic
for a user and password, an OAuth2 ``refresh_token`` grant for an identity token), then send
``Authorization: Bearer TOKEN``. Tokens are kept per scope until shortly before they expire.
``Basic realm=...`` means: send the user and password with every request.

Credentials are looked up once, when a registry first asks for them; they are never put in a
message.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from envctl.adapters.docker_config import Credentials
from envctl.adapters.http_transfer import DEFAULT_POLICY, RetryPolicy, with_retries
from envctl.errors import BuildError, BuildFailure

TIMEOUT_S = 30
MAX_TOKEN_BYTES = 1 << 20
DEFAULT_EXPIRES_S = 60  # the token spec's default (and minimum) lifetime
USER_AGENT = "envctl"
_SCHEME = re.compile(r"\s*,?\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?=\s|$)")
_PARAM = re.compile(r'\s*,?\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)')


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: a scheme (lower case) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str | None) -> list[Challenge]:
    """Every challenge in a ``WWW-Authenticate`` value, in order (RFC 9110 auth-params)."""
    text = header or ""
    found: list[Challenge] = []
    pos = 0
    while (scheme := _SCHEME.match(text, pos)) is not None:
        pos = scheme.end()
        params: dict[str, str] = {}
        while (param := _PARAM.match(text, pos)) is not None:
            value = param.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[param.group(1).lower()] = value
            pos = param.end()
        found.append(Challenge(scheme.group(1).lower(), params))
    return found


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    renew_at: float


class RegistryAuth:
    """What to send to one registry so that it answers; learns the scheme from its 401s."""

    def __init__(
        self,
        host: str,
        credentials: Callable[[], Credentials | None],
        insecure: bool = False,
        policy: RetryPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.monotonic,
        urlopen: Callable[..., object] = urllib.request.urlopen,
    ) -> None:
        self.host = host
        self._lookup = credentials
        self._looked_up = False
        self._credentials: Credentials | None = None
        self._insecure = insecure
        self._policy = policy
        self._clock = clock
        self._urlopen = urlopen
        self._bearer: Challenge | None = None
        self._basic = False
        self._tokens: dict[str, _Token] = {}
        #: token requests sent, for tests and --debug
        self.token_requests = 0

    def credentials(self) -> Credentials | None:
        """The user's login for this registry (looked up on first use), or None."""
        if not self._looked_up:
            self._credentials = self._lookup()
            self._looked_up = True
        return self._credentials

    def who(self) -> str:
        """How requests are authorized, for messages: "the credentials from X" or "anonymous"."""
        if not self._looked_up or self._credentials is None:
            return "an anonymous pull"
        return f"the credentials from {self._credentials.source}"

    def scheme(self) -> str:
        """How the registry asked to be authorized so far: "bearer", "basic" or "anonymous"."""
        return "bearer" if self._bearer is not None else "basic" if self._basic else "anonymous"

    def header(self, scope: str) -> str | None:
        """The ``Authorization`` value for a request in ``scope``, or None (anonymous)."""
        if self._bearer is not None:
            token = self._tokens.get(scope)
            if token is None or self._clock() >= token.renew_at:
                token = self._fetch_token(scope)
            return f"Bearer {token.value}"
        if self._basic:
            creds = self.credentials()
            assert creds is not None
            pair = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        return None

    def answer(self, www_authenticate: str | None, scope: str) -> None:
        """Get ready to repeat a request the registry answered 401: a fresh token, or Basic."""
        challenges = parse_challenges(www_authenticate)
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            self._bearer = bearer
            self._tokens.pop(scope, None)
            self._fetch_token(scope)
            return
        if any(c.scheme == "basic" for c in challenges):
            creds = self.credentials()
            if creds is None or not (creds.username or creds.password):
                raise BuildFailure(
                    f"{self.host}: the registry needs a user and password (Basic) and none is configured",
                    hint=f"docker login {self.host} (envctl reads DOCKER_CONFIG/config.json)",
                )
            self._basic = True
            return
        schemes = ", ".join(c.scheme for c in challenges) or "none"
        raise BuildFailure(f"{self.host}: the registry answered 401 asking for {schemes} authentication")

    def _fetch_token(self, scope: str) -> _Token:
        assert self._bearer is not None
        params = self._bearer.params
        realm = params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        shown = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        if parts.scheme != "https" and not (parts.scheme == "http" and self._insecure):
            raise BuildFailure(
                f"{self.host}: token realm {shown or '(none)'!r} is not https",
                hint="a plain-HTTP token service is used only with --insecure-registry",
            )
        scopes = [scope]
        if params.get("scope") and params["scope"] != scope:
            scopes.append(params["scope"])
        creds = self.credentials()
        request = _token_request(realm, params.get("service"), scopes, creds)
        self.token_requests += 1
        try:
            data = with_retries(lambda: self._read(request), self._policy)
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise BuildFailure(
                    f"{self.host}: token service {shown} refused {self.who()} ({exc.code})",
                    hint=f"check the login for {self.host} (docker login {self.host})",
                ) from exc
            raise BuildFailure(f"{self.host}: token service {shown} answered {exc.code}") from exc
        except OSError as exc:
            raise BuildFailure(f"{self.host}: cannot reach token service {shown}: {exc}") from exc
        try:
            answer = json.loads(data)
            value = answer.get("token") or answer.get("access_token")
            expires = int(answer.get("expires_in") or DEFAULT_EXPIRES_S)
        except (ValueError, AttributeError, TypeError):
            value = None
        if not isinstance(value, str) or not value:
            raise BuildFailure(f"{self.host}: token service {shown} answered no token")
        lifetime = max(expires, 1)
        token = _Token(value, self._clock() + lifetime - min(10.0, lifetime / 10))
        self._tokens[scope] = token
        return token

    def _read(self, request: urllib.request.Request) -> bytes:
        with self._urlopen(request, timeout=TIMEOUT_S) as response:  # type: ignore[attr-defined]
            data: bytes = response.read(MAX_TOKEN_BYTES + 1)
        if len(data) > MAX_TOKEN_BYTES:
            raise BuildError(f"{self.host}: token answer larger than {MAX_TOKEN_BYTES} bytes")
        return data


def _token_request(
    realm: str, service: str | None, scopes: list[str], creds: Credentials | None
) -> urllib.request.Request:
    """GET realm?service&scope (Basic when there is a password), or the OAuth2 refresh grant."""
    # nvcr.io's realm carries a scope in its own query already: not asked for twice
    present = urllib.parse.parse_qs(urllib.parse.urlsplit(realm).query).get("scope", [])
    fields = [("service", service)] if service else []
    fields += [("scope", s) for s in scopes if s not in present]
    headers = {"User-Agent": USER_AGENT}
    if creds is not None and creds.identity_token:
        body = [
            ("grant_type", "refresh_token"),
            ("refresh_token", creds.identity_token),
            ("client_id", USER_AGENT),
            *fields,
        ]
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        data = urllib.parse.urlencode(body).encode()
        return urllib.request.Request(realm, data=data, headers=headers, method="POST")
    separator = "&" if urllib.parse.urlsplit(realm).query else "?"
    request = urllib.request.Request(realm + separator + urllib.parse.urlencode(fields), headers=headers)
    if creds is not None and (creds.username or creds.password):
        pair = f"{creds.username}:{creds.password}".encode()
        request.add_unredirected_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    return request
