"""Challenges are parsed as registries send them; tokens are fetched, kept per scope, renewed."""

from __future__ import annotations

import base64
import email.message
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from envctl.adapters.docker_config import Credentials
from envctl.adapters.http_transfer import RetryPolicy
from envctl.adapters.registry_auth import Challenge, RegistryAuth, parse_challenges
from envctl.errors import BuildFailure

FAST = RetryPolicy(wait_initial_s=0, wait_max_s=0, wait_jitter_s=0)
SECRET = "pw-do-not-show"
SCOPE = "repository:team/img:pull"
HUB = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull"'


def test_challenges_as_registries_send_them() -> None:
    assert parse_challenges(HUB) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/python:pull",
            },
        )
    ]
    assert parse_challenges('Basic realm="Registry Realm"') == [
        Challenge("basic", {"realm": "Registry Realm"})
    ]
    two = parse_challenges(
        'Basic realm="a, b", Bearer realm="https://t/x",service=s, error="insufficient_scope"'
    )
    assert [c.scheme for c in two] == ["basic", "bearer"]
    assert two[0].params == {"realm": "a, b"}
    assert two[1].params == {"realm": "https://t/x", "service": "s", "error": "insufficient_scope"}
    assert parse_challenges('Bearer realm="say \\"hi\\""')[0].params["realm"] == 'say "hi"'
    assert parse_challenges(None) == [] and parse_challenges("") == []


class FakeTokenService:
    """urlopen for a token realm: records requests, answers tokens or a status."""

    def __init__(self, status: int = 200, expires_in: int | None = 300) -> None:
        self.status = status
        self.expires_in = expires_in
        self.requests: list[urllib.request.Request] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> Any:
        self.requests.append(request)
        if self.status != 200:
            raise urllib.error.HTTPError(request.full_url, self.status, "no", email.message.Message(), None)
        answer: dict[str, Any] = {"token": f"tok{len(self.requests)}"}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return io.BytesIO(json.dumps(answer).encode())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _auth(
    service: FakeTokenService,
    creds: Credentials | None = None,
    clock: Clock | None = None,
    insecure: bool = False,
) -> RegistryAuth:
    return RegistryAuth("reg.example", lambda: creds, insecure, FAST, clock or Clock(), service)


CHALLENGE = f'Bearer realm="https://auth.example/token",service="reg",scope="{SCOPE}"'


def test_a_token_is_fetched_once_per_scope_and_renewed_before_it_expires() -> None:
    service, clock = FakeTokenService(expires_in=100), Clock()
    auth = _auth(service, clock=clock)
    assert auth.header(SCOPE) is None  # nothing asked yet: anonymous
    auth.answer(CHALLENGE, SCOPE)
    assert auth.header(SCOPE) == "Bearer tok1"
    clock.now += 80
    assert auth.header(SCOPE) == "Bearer tok1" and len(service.requests) == 1
    clock.now += 15  # within 10 s of its end: renewed
    assert auth.header(SCOPE) == "Bearer tok2"
    assert auth.header("repository:other:pull") == "Bearer tok3"  # another scope, another token
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(service.requests[0].full_url).query)
    assert query == {"service": ["reg"], "scope": [SCOPE]}
    assert not service.requests[0].has_header("Authorization")  # anonymous


def test_another_401_with_a_token_fetches_a_fresh_one() -> None:
    service = FakeTokenService(expires_in=None)  # the spec's default lifetime: 60 s
    auth = _auth(service)
    auth.answer(CHALLENGE, SCOPE)
    auth.answer(CHALLENGE, SCOPE)  # revoked or expired early
    assert auth.header(SCOPE) == "Bearer tok2" and len(service.requests) == 2


def test_a_password_goes_to_the_realm_as_basic_never_in_the_url() -> None:
    service = FakeTokenService()
    auth = _auth(service, Credentials("alice", SECRET, source="helper x"))
    auth.answer(CHALLENGE, SCOPE)
    request = service.requests[0]
    assert SECRET not in request.full_url
    expected = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert request.unredirected_hdrs["Authorization"] == expected  # not sent on along a redirect


def test_an_identity_token_uses_the_refresh_grant() -> None:
    service = FakeTokenService()
    auth = _auth(service, Credentials("", "", "refresh-xyz", source="helper x"))
    auth.answer(CHALLENGE, SCOPE)
    request = service.requests[0]
    assert request.get_method() == "POST" and not request.has_header("Authorization")
    assert isinstance(request.data, bytes)
    form = urllib.parse.parse_qs(request.data.decode())
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["refresh-xyz"]
    assert form["scope"] == [SCOPE] and form["service"] == ["reg"]


def test_refused_credentials_are_one_error_without_the_secret_and_no_retry() -> None:
    service = FakeTokenService(status=401)
    auth = _auth(service, Credentials("alice", SECRET, source="credential helper docker-credential-x"))
    with pytest.raises(BuildFailure) as info:
        auth.answer(CHALLENGE, SCOPE)
    message = str(info.value)
    assert message == (
        "reg.example: token service https://auth.example/token refused the credentials from "
        "credential helper docker-credential-x (401)"
    )
    assert SECRET not in message and len(service.requests) == 1


def test_a_token_service_that_fails_is_retried() -> None:
    service = FakeTokenService(status=503)
    with pytest.raises(BuildFailure, match="answered 503"):
        _auth(service).answer(CHALLENGE, SCOPE)
    assert len(service.requests) == FAST.attempts


def test_a_plain_http_realm_needs_insecure() -> None:
    plain = 'Bearer realm="http://127.0.0.1:9/token",service="reg"'
    with pytest.raises(BuildFailure, match="is not https"):
        _auth(FakeTokenService()).answer(plain, SCOPE)
    auth = _auth(FakeTokenService(), insecure=True)
    auth.answer(plain, SCOPE)
    assert auth.header(SCOPE) == "Bearer tok1"


def test_basic_needs_a_login() -> None:
    with pytest.raises(BuildFailure, match="needs a user and password"):
        _auth(FakeTokenService()).answer('Basic realm="r"', SCOPE)
    auth = _auth(FakeTokenService(), Credentials("alice", SECRET, source="x"))
    auth.answer('Basic realm="r"', SCOPE)
    assert auth.header(SCOPE) == "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert auth.who() == "the credentials from x"
    with pytest.raises(BuildFailure, match="asking for negotiate authentication"):
        auth.answer("Negotiate", SCOPE)


@pytest.mark.parametrize(
    ("challenge", "scope", "url", "scopes", "service"),
    [
        # Docker Hub: realm, service and the repository's scope
        (
            HUB,
            "repository:library/python:pull",
            "https://auth.docker.io/token",
            ["repository:library/python:pull"],
            "registry.docker.io",
        ),
        # ghcr.io
        (
            'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:team/img:pull"',
            "repository:team/img:pull",
            "https://ghcr.io/token",
            ["repository:team/img:pull"],
            "ghcr.io",
        ),
        # nvcr.io: no service, and the scope (pull,push) in the realm's own query already
        (
            'Bearer realm="https://nvcr.io/proxy_auth?scope=repository:nvidia/pytorch:pull,push",'
            'scope="repository:nvidia/pytorch:pull,push"',
            "repository:nvidia/pytorch:pull",
            "https://nvcr.io/proxy_auth",
            ["repository:nvidia/pytorch:pull", "repository:nvidia/pytorch:pull,push"],
            None,
        ),
    ],
)
def test_token_requests_as_public_registries_ask_for_them(
    challenge: str, scope: str, url: str, scopes: list[str], service: str | None
) -> None:
    tokens = FakeTokenService()
    auth = _auth(tokens, Credentials("$oauthtoken", SECRET, source="x"))
    auth.answer(challenge, scope)
    parts = urllib.parse.urlsplit(tokens.requests[0].full_url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == url
    query = urllib.parse.parse_qs(parts.query)
    assert sorted(query["scope"]) == sorted(scopes)  # each once
    assert query.get("service") == ([service] if service else None)
    assert SECRET not in tokens.requests[0].full_url
    assert auth.header(scope) == "Bearer tok1"
