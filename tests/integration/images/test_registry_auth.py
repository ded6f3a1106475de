"""Base images from a real registry (docker-registry) that wants a login: Basic from htpasswd, and
the bearer-token flow against a token service started here, with credentials from a temporary
DOCKER_CONFIG and a real credential helper on PATH. All on 127.0.0.1."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import registry_services as rs
from bd_cli import build_json, run_cli

from envctl.adapters.blob_cache import BlobCache
from envctl.services.build.base_source import resolve_base

pytestmark = pytest.mark.integration

PASSWORD = "alice-pw-7c1e"
REFRESH = "refresh-9f3b"
PRIVATE = "bd/debian-python:3.11"
PUBLIC = "public/debian-python:3.11"


@pytest.fixture(scope="module")
def bd_storage(tmp_path_factory: pytest.TempPathFactory, bd_base_layout: Path) -> Path:
    """Registry storage holding the debootstrap base as PRIVATE and as PUBLIC (pushed anonymously
    once, then served by registries that want a login)."""
    folder = tmp_path_factory.mktemp("bd-storage")
    with rs.registry(folder / "storage", folder) as address:
        for name in (PRIVATE, PUBLIC):
            rs.skopeo_push(bd_base_layout, f"{address}/{name}")
    return folder / "storage"


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[rs.TokenServer]:
    server = rs.TokenServer(
        tmp_path / "token",
        users={"alice": PASSWORD},
        refresh_tokens={REFRESH: "alice"},
        public=("public/debian-python",),
    )
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def token_registry(bd_storage: Path, tmp_path: Path, token_server: rs.TokenServer) -> Iterator[str]:
    with rs.registry(bd_storage, tmp_path / "registry", token_server.auth_config()) as address:
        yield address


@pytest.fixture
def basic_registry(bd_storage: Path, tmp_path: Path) -> Iterator[str]:
    users = rs.htpasswd(tmp_path / "htpasswd", {"alice": PASSWORD})
    with rs.registry(bd_storage, tmp_path / "registry", rs.htpasswd_auth(users)) as address:
        yield address


def _login(monkeypatch: pytest.MonkeyPatch, folder: Path, config: dict[str, object]) -> None:
    for key, value in rs.docker_config(folder / "docker", config).items():
        monkeypatch.setenv(key, value)


def _with_helper(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answers: dict[str, tuple[str, str]]
) -> Path:
    """A credential helper ``docker-credential-bd`` on PATH; returns its log."""
    script = rs.credential_helper(tmp_path / "bin", "bd", answers)
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    return script.parent / "bd.log"


def _pull(ref: str, cache: Path, insecure: bool = True) -> list[str]:
    base = resolve_base(ref, BlobCache(cache), "amd64", insecure_registry=insecure)
    return [layer.digest for layer in base.layers]


def _argv(lock: Path, base: str, *more: str) -> list[str]:
    return ["build", str(lock), "--base", base, "--insecure-registry", *more]


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_token_auth_through_a_credential_helper_builds(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    bd_lock: Path,
    token_registry: str,
    token_server: rs.TokenServer,
) -> None:
    log = _with_helper(monkeypatch, tmp_path, {token_registry: ("alice", PASSWORD)})
    _login(monkeypatch, tmp_path, {"credsStore": "bd", "auths": {token_registry: {}}})
    code, out, err = run_cli(
        _argv(bd_lock, f"{token_registry}/{PRIVATE}", "-o", str(tmp_path / "out"), "--json"),
        tmp_path / "cache",
    )
    assert code == 0, err
    assert json.loads(out)["base"]["ref"] == f"registry:{token_registry}/{PRIVATE}"
    # one token for the manifest, the config and every layer; the password went as Basic
    assert [(r.method, r.login, r.scopes) for r in token_server.requests] == [
        ("GET", "basic:alice", ["repository:bd/debian-python:pull"])
    ]
    assert PASSWORD not in token_server.requests[0].query
    # the helper got the server on stdin and nothing but "get" in argv
    assert log.read_text() == f"argv: get\nstdin: {token_registry}\n"
    assert PASSWORD not in out + err


def test_token_auth_over_https_as_public_registries_serve_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bd_lock: Path, bd_storage: Path
) -> None:
    """Registry and token service both on HTTPS (a CA made here): no --insecure-registry."""
    tls = rs.make_tls(tmp_path / "tls")
    tokens = rs.TokenServer(tmp_path / "token", users={"alice": PASSWORD}, tls=tls)
    try:
        with rs.registry(bd_storage, tmp_path / "registry", tokens.auth_config(), tls) as address:
            _login(monkeypatch, tmp_path, {"auths": {address: {"auth": rs.basic_auth("alice", PASSWORD)}}})
            monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-ca.pem"))
            code, _, err = run_cli(
                ["build", str(bd_lock), "--base", f"{address}/{PRIVATE}", "-o", str(tmp_path / "o")],
                tmp_path / "cache",
            )
            assert code == 1
            assert "the registry's certificate is not trusted" in _error_line(err)
            assert "SSL_CERT_FILE" in err and tokens.requests == []

            monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
            assert tokens.realm.startswith("https://")
            assert _pull(f"{address}/{PRIVATE}", tmp_path / "cache", insecure=False)
            assert [(r.method, r.login) for r in tokens.requests] == [("GET", "basic:alice")]
    finally:
        tokens.close()


def test_anonymous_tokens_pull_public_images_and_not_private_ones(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    bd_lock: Path,
    token_registry: str,
    token_server: rs.TokenServer,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    assert _pull(f"{token_registry}/{PUBLIC}", tmp_path / "cache")  # as Docker Hub's public images
    assert [r.login for r in token_server.requests] == ["anonymous"]
    code, _, err = run_cli(
        _argv(bd_lock, f"{token_registry}/{PRIVATE}", "-o", str(tmp_path / "out")),
        tmp_path / "cache2",
    )
    assert code == 1
    line = _error_line(err)
    assert f"{token_registry}/{PRIVATE}: registry answered 401 for manifests/3.11" in line
    assert "an anonymous pull may not pull bd/debian-python" in line
    assert f"docker login {token_registry}" in err
    assert not (tmp_path / "out").exists()


def test_an_identity_token_from_cred_helpers_uses_the_refresh_grant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, token_registry: str, token_server: rs.TokenServer
) -> None:
    _with_helper(monkeypatch, tmp_path, {token_registry: ("<token>", REFRESH)})
    _login(monkeypatch, tmp_path, {"credHelpers": {token_registry: "bd"}})
    assert _pull(f"{token_registry}/{PRIVATE}", tmp_path / "cache")
    assert [(r.method, r.login) for r in token_server.requests] == [("POST", "refresh:alice")]


def test_refused_credentials_are_one_line_and_not_retried(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    bd_lock: Path,
    token_registry: str,
    token_server: rs.TokenServer,
) -> None:
    _login(monkeypatch, tmp_path, {"auths": {token_registry: {"auth": rs.basic_auth("alice", "wrong-pw")}}})
    code, out, err = run_cli(
        ["build", str(bd_lock), "--base", f"{token_registry}/{PRIVATE}", "--insecure-registry", "--json"],
        tmp_path / "cache",
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["exit_code"] == 1 and doc["error_class"] == "BuildFailure"
    assert doc["error"] == (
        f"{token_registry}: token service {token_server.realm} refused the credentials from "
        f"{tmp_path / 'docker' / 'config.json'} auths.{token_registry} (401)"
    )
    assert "wrong-pw" not in out + err
    assert len(token_server.requests) == 1  # a 401 is never retried


def test_basic_auth_from_htpasswd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bd_lock: Path, basic_registry: str
) -> None:
    proxy = rs.FaultServer(upstream=basic_registry)
    try:
        _login(monkeypatch, tmp_path, {"auths": {proxy.address: {"auth": rs.basic_auth("alice", PASSWORD)}}})
        assert _pull(f"{proxy.address}/{PRIVATE}", tmp_path / "cache")
        # asked once without a login (the registry says Basic), then every request with it
        assert [(s.authorization, s.answered) for s in proxy.seen[:2]] == [(None, 401), ("Basic", 200)]
        assert all(s.authorization == "Basic" and s.answered == 200 for s in proxy.seen[1:])
        assert any("/blobs/" in s.path for s in proxy.seen)

        proxy.seen.clear()
        _login(monkeypatch, tmp_path, {"auths": {proxy.address: {"auth": rs.basic_auth("alice", "nope")}}})
        code, _, err = run_cli(
            ["build", str(bd_lock), "--base", f"{proxy.address}/{PRIVATE}", "--insecure-registry"],
            tmp_path / "cache2",
        )
        assert code == 1
        assert "the credentials from" in _error_line(err) and "nope" not in err
        assert [(s.authorization, s.answered) for s in proxy.seen] == [(None, 401), ("Basic", 401)]

        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
        code, _, err = run_cli(
            ["build", str(bd_lock), "--base", f"{proxy.address}/{PRIVATE}", "--insecure-registry"],
            tmp_path / "cache3",
        )
        assert code == 1
        assert "the registry needs a user and password (Basic) and none is configured" in _error_line(err)
    finally:
        proxy.close()


def test_basic_auth_with_a_credential_helper_asks_it_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, basic_registry: str
) -> None:
    log = _with_helper(monkeypatch, tmp_path, {basic_registry: ("alice", PASSWORD)})
    _login(monkeypatch, tmp_path, {"credHelpers": {basic_registry: "bd"}})
    layers = _pull(f"{basic_registry}/{PRIVATE}", tmp_path / "cache")
    assert layers and all(BlobCache(tmp_path / "cache").has(d.split(":")[1]) for d in layers)
    assert log.read_text() == f"argv: get\nstdin: {basic_registry}\n"


@pytest.fixture
def faulty(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, token_registry: str, bd_base_layout: Path
) -> Iterator[tuple[rs.FaultServer, str]]:
    """A fault server in front of the token registry, with alice's login; and the digest of the
    base's biggest layer."""
    proxy = rs.FaultServer(upstream=token_registry)
    _login(monkeypatch, tmp_path, {"auths": {proxy.address: {"auth": rs.basic_auth("alice", PASSWORD)}}})
    index = json.loads((bd_base_layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((bd_base_layout / "blobs" / "sha256" / manifest_digest).read_text())
    biggest = max(manifest["layers"], key=lambda layer: layer["size"])
    assert biggest["size"] > 4 << 20, "the base's biggest layer should be a big blob"
    try:
        yield proxy, biggest["digest"]
    finally:
        proxy.close()


def test_a_dropped_blob_resumes_and_transient_errors_are_retried(
    tmp_path: Path, faulty: tuple[rs.FaultServer, str]
) -> None:
    proxy, layer = faulty
    proxy.add(rs.Fault("/manifests/", status=503))
    proxy.add(rs.Fault(f"/blobs/{layer}", cut_after=3 << 20))
    proxy.add(rs.Fault(f"/blobs/{layer}", status=429, retry_after="1"))
    assert layer in _pull(f"{proxy.address}/{PRIVATE}", tmp_path / "cache")
    manifests = [s.answered for s in proxy.seen if "/manifests/" in s.path]
    assert manifests[:3] == [503, 401, 200]  # retried, then the login, then the answer
    blob = [(s.range, s.answered) for s in proxy.seen if layer in s.path]
    assert blob == [(None, 200), (f"bytes={3 << 20}-", 429), (f"bytes={3 << 20}-", 206)]
    assert BlobCache(tmp_path / "cache").has(layer.split(":")[1])


def test_a_pull_that_broke_off_goes_on_from_its_bytes_in_the_next_run(
    tmp_path: Path, bd_lock: Path, faulty: tuple[rs.FaultServer, str]
) -> None:
    proxy, layer = faulty
    hex_digest = layer.split(":")[1]
    proxy.add(rs.Fault(f"/blobs/{layer}", cut_after=3 << 20))
    proxy.add(rs.Fault(f"/blobs/{layer}", count=3, status=503))  # every try of the resume
    cache = tmp_path / "cache"
    code, _, err = run_cli(_argv(bd_lock, f"{proxy.address}/{PRIVATE}", "-o", str(tmp_path / "out")), cache)
    assert code == 1
    assert f"registry answered 503 for blobs/{layer}" in _error_line(err)
    partial = cache / "blobs" / "sha256" / f".partial-{hex_digest}"
    assert partial.stat().st_size == 3 << 20

    proxy.seen.clear()
    assert layer in _pull(f"{proxy.address}/{PRIVATE}", cache)
    assert [(s.range, s.answered) for s in proxy.seen if layer in s.path] == [(f"bytes={3 << 20}-", 206)]
    assert BlobCache(cache).has(hex_digest) and not partial.exists()


def test_a_server_that_ignores_range_restarts_the_blob(
    tmp_path: Path, faulty: tuple[rs.FaultServer, str]
) -> None:
    proxy, layer = faulty
    proxy.ranges = False
    proxy.add(rs.Fault(f"/blobs/{layer}", cut_after=1 << 20))
    assert layer in _pull(f"{proxy.address}/{PRIVATE}", tmp_path / "cache")
    assert [s.answered for s in proxy.seen if layer in s.path] == [200, 200]


def test_a_corrupted_blob_is_refused(
    tmp_path: Path, bd_lock: Path, faulty: tuple[rs.FaultServer, str]
) -> None:
    proxy, layer = faulty
    proxy.add(rs.Fault(f"/blobs/{layer}", corrupt=True))
    cache = tmp_path / "cache"
    code, _, err = run_cli(
        _argv(bd_lock, f"{proxy.address}/{PRIVATE}", "-o", str(tmp_path / "out")),
        cache,
    )
    assert code == 2
    assert f"blob {layer}: sha256 is" in _error_line(err) and f"expected {layer.split(':')[1]}" in err
    blobs = cache / "blobs" / "sha256"
    assert layer.split(":")[1] not in {p.name for p in blobs.iterdir()}
    assert not any(p.name.startswith((".incoming", ".partial")) for p in blobs.iterdir())
    assert not (tmp_path / "out").exists()


def test_wheels_over_http_resume_and_retry(
    tmp_path: Path, bd_wheelhouse: list[Path], bd_base_layout: Path
) -> None:
    import bd_wheels

    server = rs.FaultServer(root=tmp_path / "wheelhouse")
    try:
        urls = {
            bd_wheels.wheel_name_version(w)[0]: f"http://{server.address}/{w.name}" for w in bd_wheelhouse
        }
        lock = bd_wheels.write_lock(tmp_path / "lock.yml", bd_wheelhouse, urls=urls)
        torch = next(w.name for w in bd_wheelhouse if w.name.startswith("torch-"))
        cudnn = next(w.name for w in bd_wheelhouse if w.name.startswith("nvidia_cudnn"))
        server.add(rs.Fault(torch, cut_after=1000))
        server.add(rs.Fault(cudnn, status=503))
        server.add(rs.Fault(cudnn, cut_after=500))
        data = build_json(
            [str(lock), "--base", f"oci:{bd_base_layout}", "-o", str(tmp_path / "o")], tmp_path / "c"
        )
        assert data["ok"]
        assert [(s.range, s.answered) for s in server.seen if torch in s.path] == [
            (None, 200),
            ("bytes=1000-", 206),
        ]
        assert [(s.range, s.answered) for s in server.seen if cudnn in s.path] == [
            (None, 503),
            (None, 200),
            ("bytes=500-", 206),
        ]

        # a corrupted download is refused by its lock hash: exit 2, nothing cached
        server.add(rs.Fault(torch, corrupt=True))
        code, _, err = run_cli(
            ["build", str(lock), "--base", f"oci:{bd_base_layout}", "-o", str(tmp_path / "o2")],
            tmp_path / "c2",
        )
        assert code == 2 and "sha256 mismatch" in _error_line(err)
    finally:
        server.close()
