"""The agent's ``fetch``: blobs by digest from a registry (a small one in a thread on 127.0.0.1),
verified before they enter the store, resumed with Range, mirror first, the login never written."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_fetch import blob, fetch, fetch_following
from nd_registry import MiniRegistry

AUTH = "Basic " + __import__("base64").b64encode(b"alice:s3cret-pw").decode()


@pytest.fixture
def registry() -> Iterator[MiniRegistry]:
    reg = MiniRegistry(user="alice", password="s3cret-pw")
    try:
        yield reg
    finally:
        reg.close()


def stored(tmp_path: Path) -> set[str]:
    return {f"sha256:{p.name}" for p in (tmp_path / "store" / "blobs" / "sha256").iterdir()}


def source(reg: MiniRegistry) -> str:
    return f"http://{reg.address}/v2/envs/demo"


def test_fetch_stores_verified_blobs_and_skips_what_is_there(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    registry: MiniRegistry,
) -> None:
    blobs = [blob(registry, 300_000, 1), blob(registry, 10, 2)]
    request = {"sources": [source(registry)], "auth": AUTH, "blobs": blobs}
    code, doc = fetch(tmp_path, capsys, monkeypatch, request)
    assert code == 0, doc
    assert doc["fetched"] == [b["digest"] for b in blobs] and doc["bytes_written"] == 300_010
    assert stored(tmp_path) == {b["digest"] for b in blobs}
    code, doc = fetch(tmp_path, capsys, monkeypatch, request)
    assert (doc["fetched"], doc["bytes_written"]) == ([], 0) and len(doc["skipped"]) == 2
    # the login went in the header of every GET, and nowhere onto the node's disk
    assert {auth for method, _, _, auth in registry.seen if method == "GET"} == {AUTH}
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"s3cret" not in path.read_bytes() and AUTH.encode() not in path.read_bytes(), path


def test_a_corrupt_blob_is_discarded_and_nothing_enters_the_store(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    registry: MiniRegistry,
) -> None:
    bad = blob(registry, 50_000)
    registry.corrupt.add(bad["digest"])
    code, doc = fetch(
        tmp_path, capsys, monkeypatch, {"sources": [source(registry)], "auth": AUTH, "blobs": [bad]}
    )
    assert code == 3 and doc["kind"] == "corrupt", doc
    assert stored(tmp_path) == set()
    assert list((tmp_path / "store" / "tmp").iterdir()) == []  # no partial of bad bytes either


def test_a_mirror_is_tried_first_and_a_bad_one_falls_back_to_the_registry(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    registry: MiniRegistry,
) -> None:
    good, held = blob(registry, 20_000, 3), blob(registry, 5_000, 4)
    mirror = MiniRegistry()
    try:
        mirror.blobs[held["digest"]] = registry.blobs[held["digest"]]
        mirror.blobs[good["digest"]] = registry.blobs[good["digest"]]
        mirror.corrupt.add(good["digest"])  # the mirror serves it damaged: the registry's copy is used
        request = {
            "sources": [f"http://{mirror.address}/v2/envs/demo", source(registry)],
            "auth": AUTH,
            "blobs": [good, held],
            "ns": "reg.example:5000",
        }
        code, doc = fetch(tmp_path, capsys, monkeypatch, request)
        assert code == 0, doc
        assert doc["via"][held["digest"]].startswith(f"http://{mirror.address}")
        assert doc["via"][good["digest"]] == source(registry)
        assert all("ns=reg.example%3A5000" in path for _, path, _, _ in mirror.seen)
        assert stored(tmp_path) == {good["digest"], held["digest"]}
    finally:
        mirror.close()


def test_a_cut_body_resumes_with_range_from_the_partial(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    registry: MiniRegistry,
) -> None:
    big = blob(registry, 400_000)
    registry.cut[big["digest"]] = 150_000
    code, doc = fetch(
        tmp_path, capsys, monkeypatch, {"sources": [source(registry)], "auth": AUTH, "blobs": [big]}
    )
    assert code == 0, doc
    ranges = [r for method, _, r, _ in registry.seen if method == "GET"]
    assert ranges[0] is None and ranges[1] == "bytes=150000-"
    assert doc["bytes_written"] == 400_000 and stored(tmp_path) == {big["digest"]}


def test_a_stopped_registry_leaves_a_partial_the_next_fetch_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = MiniRegistry()
    big = blob(reg, 400_000)
    address = reg.address
    reg.close()  # stopped: nothing answers there
    dead = {"sources": [f"http://{address}/v2/envs/demo"], "auth": None, "blobs": [big]}
    code, doc = fetch(tmp_path, capsys, monkeypatch, dead)
    assert code == 3 and doc["kind"] == "interrupted" and "cannot fetch blob" in doc["error"], doc
    assert stored(tmp_path) == set()
    # a partial from an earlier, interrupted pull: the next one asks only for the rest
    partial = tmp_path / "store" / "tmp" / (big["digest"][7:] + ".partial")
    again = MiniRegistry()
    try:
        again.blobs[big["digest"]] = reg.blobs[big["digest"]]
        partial.write_bytes(reg.blobs[big["digest"]][:100_000])
        request = {"sources": [source(again)], "auth": None, "blobs": [big]}
        code, doc = fetch(tmp_path, capsys, monkeypatch, request)
        assert code == 0 and doc["resumed_from"] == 100_000 and doc["bytes_written"] == 300_000, doc
        assert [r for m, _, r, _ in again.seen if m == "GET"] == ["bytes=100000-"]
    finally:
        again.close()


def test_refused_credentials_are_an_auth_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    registry: MiniRegistry,
) -> None:
    request = {"sources": [source(registry)], "auth": "Basic d3Jvbmc=", "blobs": [blob(registry, 10)]}
    code, doc = fetch(tmp_path, capsys, monkeypatch, request)
    assert code == 3 and doc["kind"] == "auth" and "d3Jvbmc" not in doc["error"], doc


@pytest.mark.parametrize(
    "request_doc",
    [
        {"sources": ["file:///etc/passwd"], "blobs": []},
        {"sources": ["http://h/v2/r"], "blobs": [{"digest": "sha256:../../x", "size": 1}]},
        {"sources": ["http://h/v2/r"], "auth": "Bearer a\nb", "blobs": []},
        {"sources": [], "blobs": []},
        {"sources": ["http://h/v2/r"], "blobs": [{"digest": "sha256:" + "a" * 64, "size": -1}]},
    ],
)
def test_bad_requests_are_protocol_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request_doc: dict[str, Any],
) -> None:
    code, doc = fetch(tmp_path, capsys, monkeypatch, request_doc)
    assert code == 3 and doc["kind"] in ("protocol", "input"), doc
    assert not os.path.exists(tmp_path / "store" / "blobs") or stored(tmp_path) == set()


def test_follow_mode_fetches_each_blob_as_it_is_announced(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    registry: MiniRegistry,
) -> None:
    first, second = blob(registry, 200_000, 3), blob(registry, 77, 4)
    request = {"sources": [source(registry)], "auth": AUTH, "blobs": [first]}
    code, doc = fetch_following(tmp_path, capsys, monkeypatch, request, [second])
    assert code == 0, doc
    assert doc["fetched"] == [first["digest"], second["digest"]] and doc["bytes_written"] == 200_077
    assert stored(tmp_path) == {first["digest"], second["digest"]}


def test_follow_mode_without_its_end_line_fails_and_keeps_what_verified(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    registry: MiniRegistry,
) -> None:
    """The sender stops announcing when its upload fails: what arrived stays, verified; the run
    says it was cut short instead of reporting success."""
    one = blob(registry, 1000, 5)
    request = {"sources": [source(registry)], "auth": AUTH, "blobs": []}
    code, doc = fetch_following(tmp_path, capsys, monkeypatch, request, [one], end=False)
    assert code == 3 and doc["kind"] == "interrupted", doc
    assert stored(tmp_path) == {one["digest"]}


def test_follow_mode_refuses_a_malformed_announcement(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    registry: MiniRegistry,
) -> None:
    request = {"sources": [source(registry)], "auth": AUTH, "blobs": []}
    bad = {"digest": "sha256:../../etc", "size": 1, "manifest": None}
    code, doc = fetch_following(tmp_path, capsys, monkeypatch, request, [bad])
    assert code == 3 and doc["kind"] in ("protocol", "input"), doc
    assert not os.path.exists(tmp_path / "store" / "blobs") or stored(tmp_path) == set()
