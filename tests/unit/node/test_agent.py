"""The agent trusts nothing it is handed: arguments, stdin documents, stream headers, manifests,
state files. Each bad input is one JSON error of its own kind, never "agent bug", and touches
nothing (every store and prefix root here is a decoy under tmp_path)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_oci import Entry, sparse_tar, write_image_blobs

from envctl.node import agent

HEX = "ab" * 32
DIGEST = f"sha256:{HEX}"


class Node:
    """A store and a prefix root under tmp_path, and the agent's main() run against them."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.tmp, self.capsys, self.monkeypatch = tmp_path, capsys, monkeypatch
        self.store, self.prefix = tmp_path / "store", tmp_path / "envs"
        for sub in ("blobs/sha256", "state", "tmp", "stamps"):
            (self.store / sub).mkdir(parents=True, exist_ok=True)
        self.prefix.mkdir()

    def run(self, *args: str, stdin: bytes = b"", runtime: str = "prefix") -> tuple[int, dict[str, Any]]:
        feed = self.tmp / "stdin"
        feed.write_bytes(stdin)
        with open(feed) as fh:
            self.monkeypatch.setattr(sys, "stdin", fh)
            self.capsys.readouterr()
            argv = ["--store", str(self.store), "--prefix-root", str(self.prefix), "--runtime", runtime]
            code = agent.main([*argv, *args])
        out = self.capsys.readouterr().out.strip().splitlines()
        assert len(out) == 1, out  # one JSON document, whatever happened
        return code, dict(json.loads(out[0]))

    def image(self, *layers: list[Entry] | bytes) -> str:
        """Blobs of an image straight into the store (its layout is the store's); the manifest digest."""
        return str(write_image_blobs(self.store, list(layers))["digest"])

    def other_env(self) -> None:
        (self.prefix / "other@1").mkdir()
        (self.prefix / "other@1" / "file").write_text("other env")
        os.symlink("other@1", self.prefix / "other")

    def other_env_intact(self) -> None:
        assert (self.prefix / "other" / "file").read_text() == "other env"
        assert {"other", "other@1"} <= set(os.listdir(self.prefix))
        assert not [n for n in os.listdir(self.prefix) if ".partial-" in n]


@pytest.fixture
def node(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Node:
    return Node(tmp_path, capsys, monkeypatch)


# ---------------------------------------------------------------- arguments: full matches
@pytest.mark.parametrize(
    "args",
    [
        ("prepare", "nl\n", DIGEST),  # finding 13: "nl\n" was a valid env name on the node
        ("switch", "e1", DIGEST + "\n"),
        ("have", DIGEST + "\n"),
        ("verify", "sha256:" + "AB" * 32),
        ("state", "../etc"),
        ("restore", "e1\n"),
    ],
)
def test_names_and_digests_are_full_matches(node: Node, args: tuple[str, ...]) -> None:
    code, doc = node.run(*args)
    assert code == 3 and doc["kind"] == "input", doc
    assert os.listdir(node.prefix) == [] and os.listdir(node.store / "state") == []


@pytest.mark.parametrize(
    "args",
    [
        ("--lock-timeout", "nan", "have"),
        ("--idle-timeout", "inf", "receive"),
        ("--max-bytes", "0", "have"),
        ("--by", "x\ny", "have"),
        ("gc", "--max-age", "nan"),
        ("gc", "--max-age", "-1"),
        ("no-such-command",),
    ],
)
def test_bad_command_lines_are_json_errors_not_usage_text(node: Node, args: tuple[str, ...]) -> None:
    code, doc = node.run(*args)
    assert code == 3 and doc["kind"] == "input", doc


def test_a_bad_store_path_is_refused(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    assert agent.main(["--store", "relative/store", "have"]) == 3
    assert json.loads(capsys.readouterr().out)["kind"] == "input"


# ---------------------------------------------------------------- have: many digests on stdin
def test_have_takes_any_number_of_digests_on_stdin(node: Node) -> None:
    # finding 14: an image of 10,002 layers overflowed the command line (an empty reason)
    digests = [f"sha256:{i:064x}" for i in range(10_003)]
    code, doc = node.run("have", "--stdin", stdin="".join(d + "\n" for d in digests).encode())
    assert code == 0 and doc["present"] == [] and doc["partial"] == {}
    code, doc = node.run("have", "--stdin", stdin=b"sha256:zz\n")
    assert code == 3 and doc["kind"] == "input"


# ---------------------------------------------------------------- receive: bounded headers
@pytest.mark.parametrize(
    "stream",
    [
        f"blob {DIGEST} 5 9\n".encode(),  # resume offset past the blob's size
        f"blob {DIGEST} -5 0\n".encode(),
        b"blob \xff\xfe\n",  # not ascii: was "agent bug: UnicodeDecodeError"
        b"x" * (1 << 20),  # a header that never ends: refused, not buffered and echoed
    ],
)
def test_malformed_stream_headers_are_protocol_errors_with_short_messages(node: Node, stream: bytes) -> None:
    code, doc = node.run("receive", stdin=stream)
    assert code == 3 and doc["kind"] == "protocol", doc
    assert len(doc["error"]) < 400
    assert os.listdir(node.store / "blobs" / "sha256") == []


# ---------------------------------------------------------------- restore: the node's own record only
TOKEN_1, TOKEN_2 = "1700000000000000001-" + "c" * 16, "1700000000000000002-" + "c" * 16


def _under(node: Node, generation: int, token: str, digest: str) -> list[str]:
    """Claim e1 for this ballot; the options that run a step under it."""
    ballot = ["--generation", str(generation), "--token", token]
    request = {"op": "push", "digest": digest, "by": "me", "members": ["n1"]}
    code, doc = node.run("claim", "e1", *ballot, stdin=json.dumps(request).encode())
    assert code == 0 and doc["granted"], doc
    return ballot


HOSTILE_OLD: list[Any] = [
    # finding 12: the symlink became e1 -> e1@/../../../tmp/...
    {"env": "e1", "runtime": "prefix", "current": {"digest": "../../../tmp/x"}, "previous": None},
    # finding 12: a record without env broke state and gc for every environment
    {"current": {"digest": DIGEST}},
    {"env": "other", "runtime": "prefix", "current": {"digest": DIGEST}, "previous": None},
    {"env": "e1", "runtime": "lxc", "current": {"digest": DIGEST}, "previous": None},
    [1, 2],
]


@pytest.mark.parametrize(
    "sent", [json.dumps(old).encode() for old in HOSTILE_OLD] + [b"[" * 100_000, b" " * (17 << 20)]
)
def test_restore_reads_nothing_it_is_sent(node: Node, sent: bytes) -> None:
    # finding 12: restore wrote whatever state it was sent; it now puts back what the node kept
    digest = node.image([("file", "f", b"1")])
    ballot = _under(node, 1, TOKEN_1, digest)
    assert node.run("switch", "e1", digest, *ballot)[0] == 0
    code, doc = node.run("restore", "e1", *ballot, stdin=sent)
    assert code == 0 and doc["state"] is None, doc
    assert not os.path.lexists(node.prefix / "e1") and os.listdir(node.store / "state") == []


def test_restore_puts_back_the_record_the_node_kept(node: Node) -> None:
    first, second = node.image([("file", "f", b"1")]), node.image([("file", "f", b"2")])
    assert node.run("switch", "e1", first, *_under(node, 1, TOKEN_1, first))[0] == 0
    ballot = _under(node, 2, TOKEN_2, second)
    assert node.run("switch", "e1", second, *ballot)[0] == 0
    code, doc = node.run("restore", "e1", *ballot)
    assert code == 0 and doc["state"]["current"]["digest"] == first
    assert json.loads((node.store / "state" / "e1.json").read_text())["current"]["digest"] == first
    assert os.readlink(node.prefix / "e1") == f"e1@{first[7:]}"
    code, doc = node.run("restore", "e1", *ballot)  # undone once: nothing left to undo
    assert code == 3 and doc["kind"] == "input" and "no switch" in doc["error"]


# ---------------------------------------------------------------- state files, one by one
BAD_STATE = {
    "no-env": json.dumps({"runtime": "oci", "current": {"digest": DIGEST}}),
    "not-json": "{",
    "deep": "[" * 100_000,
    "a-list": "[]",
    "bad-digest": json.dumps({"env": "bad-digest", "runtime": "oci", "current": {"digest": "x"}}),
    "NL\n": json.dumps({"env": "NL\n", "runtime": "oci", "current": None}),
}


def _good_state(node: Node, env: str, digest: str, runtime: str = "oci") -> None:
    record = {"env": env, "runtime": runtime, "current": {"digest": digest, "when": 1.0}, "previous": None}
    (node.store / "state" / f"{env}.json").write_text(json.dumps(record))


def test_one_bad_state_file_is_reported_alone(node: Node) -> None:
    # finding 12: one record without env made `state` fail for every environment
    digest = node.image([("file", "f", b"1")])
    _good_state(node, "good", digest)
    for name, text in BAD_STATE.items():
        (node.store / "state" / f"{name}.json").write_text(text)
    code, doc = node.run("state", runtime="oci")
    assert code == 0, doc
    envs = doc["envs"]
    assert envs["good"]["drift"] is None and envs["good"]["actual"] == digest
    for name in BAD_STATE:
        assert envs[name]["drift"].startswith("unreadable state"), name
        assert envs[name]["current"] is None and len(envs[name]["drift"]) < 700


def test_gc_runs_past_a_bad_state_file_and_keeps_what_it_mentions(node: Node) -> None:
    kept = node.image([("file", "f", b"kept")])
    gone = node.image([("file", "f", b"gone")])
    (node.store / "state" / "broken.json").write_text(json.dumps({"current": {"digest": kept}}))
    (node.prefix / f"broken@{kept[7:]}").mkdir()
    (node.prefix / f"nobody@{gone[7:]}").mkdir()
    for path in [*(node.store / "blobs" / "sha256").iterdir(), *node.prefix.iterdir()]:
        os.utime(path, (1, 1))
    code, doc = node.run("gc", "--max-age", "0")
    assert code == 0, doc
    assert doc["removed_trees"] == [f"nobody@{gone[7:]}"]
    assert "broken" in doc["unreadable_state"]
    assert (node.store / "blobs" / "sha256" / kept[7:]).exists()
    assert not (node.store / "blobs" / "sha256" / gone[7:]).exists()


# ---------------------------------------------------------------- hostile images through prepare
def test_a_manifest_that_is_no_manifest_is_an_input_error(node: Node) -> None:
    for doc in ({"config": {}, "layers": "abc"}, {"config": {"digest": "x"}, "layers": []}, [1]):
        data = json.dumps(doc).encode()
        digest = hashlib.sha256(data).hexdigest()
        (node.store / "blobs" / "sha256" / digest).write_bytes(data)
        code, out = node.run("prepare", "e1", f"sha256:{digest}")
        assert code == 3 and out["kind"] == "input", out


@pytest.mark.parametrize(
    ("layers", "reason"),
    [
        ([[("file", "a/" * 2000 + "f", b"")]], "deeper than 256 directories"),  # was RecursionError
        ([[("file", "x", b"")], [("file", ".wh...", b"")]], "names no entry"),  # was: prefix root gone
        ([[("symlink", "b", "."), ("symlink", "c", "b/..")]], "points outside the tree"),
    ],
)
def test_hostile_image_fails_prepare_as_hostile_and_spares_other_envs(
    node: Node, layers: list[list[Entry]], reason: str
) -> None:
    node.other_env()
    code, doc = node.run("prepare", "e1", node.image(*layers))
    assert code == 3 and doc["kind"] == "hostile" and reason in doc["error"], doc
    node.other_env_intact()
    assert sorted(os.listdir(node.prefix)) == ["other", "other@1"]


def test_unpack_limits_come_from_the_command_line(node: Node) -> None:
    digest = node.image(sparse_tar("big.bin", 2 << 30))
    code, doc = node.run("--max-bytes", str(1 << 30), "prepare", "e1", digest)
    assert code == 3 and doc["kind"] == "hostile" and "unpacks to more than 1073741824" in doc["error"]
    code, doc = node.run(
        "--max-entries", "1", "prepare", "e1", node.image([("dir", "a"), ("file", "a/b", b"")])
    )
    assert code == 3 and "more than 1 entries" in doc["error"]


def test_disk_full_in_the_prefix_root_names_it_not_the_store(node: Node) -> None:
    # finding 14: reported as "the store: No space left on device"
    node.other_env()
    digest = node.image([("file", "data.bin", b"\1" * 1000)])
    real_write = os.write

    def full(fd: int, data: Any) -> int:
        if fd > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    node.monkeypatch.setattr(os, "write", full)
    code, doc = node.run("prepare", "e1", digest)
    node.monkeypatch.setattr(os, "write", real_write)
    assert code == 3 and doc["kind"] == "nospace"
    assert doc["error"].startswith(f"{node.prefix}: No space left on device while unpacking 'data.bin'")
    node.other_env_intact()


def test_error_messages_are_bounded(node: Node) -> None:
    name = "d/" + "n" * 250 + "/" + "[/x]" * 5000
    digest = node.image([("symlink", "l", "../" * 3000)], [("file", name[:3000], b"")])
    code, doc = node.run("prepare", "e1", digest)
    assert code == 3 and len(doc["error"]) < 700, doc


def test_prepared_layer_through_gzip_stays_byte_exact(node: Node) -> None:
    # the hole-punching writer must not change a file's bytes (zeros inside data included)
    data = b"head" + bytes(3 << 20) + b"tail" + bytes(5)
    digest = node.image([("file", "f.bin", data)])
    code, doc = node.run("prepare", "e1", digest)
    assert code == 0, doc
    assert (Path(doc["path"]) / "f.bin").read_bytes() == data


# ---------------------------------------------------------------- the options a sudo rule pins
@pytest.mark.parametrize("twice", [("--store", "/etc"), ("--prefix-root", "/")])
def test_store_and_prefix_root_may_be_given_once(node: Node, twice: tuple[str, ...]) -> None:
    # envctl bootstrap's sudo rule names both before a wildcard: a second one must not move them
    code, doc = node.run(*twice, "state")
    assert (code, doc) == (3, {"error": f"{twice[0]} given twice", "kind": "input"})
