"""Fuzz the node side and what the client reads from images: layer tars (the unpacker, on a temp
dir), the agent's command line and stdin (every subcommand, receive's framed stream, have
--stdin), the agent's state and epoch files, and OCI layouts (index.json, manifests, configs)
through ``envctl push`` to a 'node' that is a temp directory. The agent's rule: one JSON
document, an error of a named kind (never "bug"), nothing touched outside its store and prefix
root; the client's: a result or exit 2 with one line."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from . import strategies as s
from .harness import FIXTURES, Outcome, Sandbox, call, check, examples, judge_cli, sandbox

sys.path.insert(0, str(FIXTURES / "nodes"))
from nd_oci import MANIFEST, app_layers, layer_tar, sparse_tar, write_layout

from envctl.node import agent, unpack, unpack_policy

HEX = "ab" * 32

# ---------------------------------------------------------------- layer tars
names = st.one_of(
    st.sampled_from(
        [
            "a",
            "a/b",
            "d",
            "d/x",
            "./a",
            "a/",
            "/abs",
            "../up",
            "a/../../up",
            "a/./b",
            ".wh.",
            ".wh..",
            ".wh...",
            ".wh.a",
            "d/.wh..wh..opq",
            ".wh..wh.plnk",
            "a" * 300,
            "a/" * 300,
            "x\x00y",
            "dev/[/x]",
            "\u202e",
            "d/../d/x",
            "",
        ]
    ),
    s.hostile_text,
)
targets = st.sampled_from(["a", "d", "/", "..", "../..", "/etc", ".", "d/..", "b/..", "a" * 5000, "DECOY"])
entries = st.one_of(
    st.tuples(st.just("file"), names, st.binary(max_size=64), st.sampled_from([0o644, 0o4755, 0o777, 0])),
    st.tuples(st.just("dir"), names, st.sampled_from([0o755, 0o1777, 0o000, 0o7777])),
    st.tuples(st.just("symlink"), names, targets),
    st.tuples(st.just("hardlink"), names, targets),
    st.tuples(st.sampled_from(["chr", "fifo"]), names),
)


@st.composite
def layers(draw: st.DrawFn) -> list[tuple[str, Any, bool]]:
    """One to three layer specs (see ``layer_bytes``): entry lists (a symlink may point at the
    sandbox's decoy directory), raw mutations of a valid layer, or a sparse file of a huge
    apparent size; each gzipped or not."""
    out: list[tuple[str, Any, bool]] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["entries", "entries", "bytes", "sparse"]))
        if kind == "entries":
            spec: Any = draw(st.lists(entries, min_size=1, max_size=6))
        elif kind == "bytes":
            base = bytearray(layer_tar([("dir", "d"), ("file", "d/x", b"hello"), ("symlink", "l", "d/x")]))
            for _ in range(draw(st.integers(1, 8))):
                base[draw(st.integers(0, len(base) - 1))] = draw(st.integers(0, 255))
            spec = bytes(base[: draw(st.integers(0, len(base)))])
        else:
            spec = draw(st.sampled_from([4096, 2**31, 2**40]))
        out.append((kind, spec, draw(st.booleans())))
    return out


def layer_bytes(spec: tuple[str, Any, bool], decoy: Path) -> bytes:
    """The bytes of one layer spec; ``DECOY`` in an entry becomes the decoy directory's path."""
    kind, value, gz = spec
    if kind == "entries":
        try:
            raw = layer_tar([tuple(str(decoy) if v == "DECOY" else v for v in e) for e in value])
        except (ValueError, UnicodeError, OverflowError):  # tarfile cannot write this one
            raw = layer_tar([("file", "ok", b"")])
    elif kind == "bytes":
        raw = value
    else:
        raw = sparse_tar("big", value)
    return gzip.compress(raw, mtime=0) if gz else raw


SMALL_LIMITS = unpack_policy.Limits(max_entries=50, max_bytes=1 << 20, max_depth=32)


@examples(80)
@given(layers(), st.booleans())
def test_layer_tar(specs: list[tuple[str, Any, bool]], small_limits: bool) -> None:
    with sandbox() as box:
        # the decoy directory as a link target: the unpacker must never reach it
        raw_layers = [layer_bytes(spec, box.base / "decoy-dir") for spec in specs]
        paths = [str(box.write(f"layer{i}", raw)) for i, raw in enumerate(raw_layers)]
        box.seal()
        limits = SMALL_LIMITS if small_limits else None
        outcome = call(
            box,
            lambda: unpack.unpack_layers(paths, str(box.out / "tree"), limits),
            (unpack_policy.UnpackError,),
        )
        if outcome.kind == "refused" and os.path.lexists(box.out / "tree"):
            outcome = Outcome("lost", "a refused image left its tree")
        leftovers = [n for n in os.listdir(box.out) if ".partial-" in n]
        if leftovers:
            outcome = Outcome("lost", f"temporary tree left: {leftovers}")
        check("layer tar", outcome)


# ---------------------------------------------------------------- the agent: argv and stdin
class Node:
    """A store and a prefix root under the sandbox's target/out, and agent.main() against them."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.store, self.prefix = box.out / "store", box.out / "envs"
        for sub in ("blobs/sha256", "state", "tmp", "stamps", "epochs"):
            (self.store / sub).mkdir(parents=True, exist_ok=True)
        self.prefix.mkdir()

    def run(self, args: list[str], stdin: bytes = b"", runtime: str = "prefix") -> Outcome:
        feed = self.box.home / "stdin"
        feed.write_bytes(stdin)
        out = io.StringIO()
        argv = ["--store", str(self.store), "--prefix-root", str(self.prefix), "--runtime", runtime]
        argv += ["--idle-timeout", "2", "--lock-timeout", "2", *args]
        with open(feed, "rb") as fh, contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
            old = sys.stdin
            sys.stdin = io.TextIOWrapper(fh)
            stack.callback(setattr, sys, "stdin", old)
            try:
                code = agent.main(argv)
            except BaseException:
                return Outcome(
                    "lost", "traceback: " + traceback.format_exc(limit=-3).strip().splitlines()[-1]
                )
        return judge_agent(self.box, code, out.getvalue())


def judge_agent(box: Sandbox, code: int, stdout: str) -> Outcome:
    """One JSON document; exit 0 (a result) or 3 with an error of a named kind, not "bug"."""
    damage = box.damage()
    if damage:
        return Outcome("lost", damage)
    lines = stdout.strip().splitlines()
    if len(lines) != 1:
        return Outcome("lost", f"{len(lines)} lines on stdout")
    doc = json.loads(lines[0])
    if code == 0 and "error" not in doc:
        return Outcome("accepted")
    if code == 3 and doc.get("kind") not in (None, "bug") and len(doc.get("error", "")) <= 2100:
        return Outcome("refused", doc["error"])
    return Outcome("lost", f"exit {code}: {lines[0][:300]}")


digests = st.one_of(
    st.sampled_from(
        [
            f"sha256:{HEX}",
            f"sha256:{HEX}\n",
            f"sha256:{HEX.upper()}",
            "sha256:../../../etc",
            f"sha512:{HEX}",
            "",
        ]
    ),
    s.hostile_text,
)
envs = st.one_of(st.sampled_from(["e1", "nl\n", "../etc", "a" * 300, ".", "e1@x", "-e"]), s.hostile_text)
options = st.sampled_from(
    [
        [],
        ["--generation", "1", "--token", "1700000000000000000-" + "ab" * 8],
        ["--generation", "0"],
        ["--generation", "9" * 30, "--token", "x"],
        ["--to", f"sha256:{HEX}"],
        ["--to", "../.."],
        ["--max-age", "nan"],
        ["--max-age", "-1"],
        ["--verify", "--members"],
        ["--stdin"],
    ]
)
arguments = st.tuples(
    st.sampled_from([*sorted(agent.COMMANDS), "nope", ""]),
    st.lists(st.one_of(envs, digests), max_size=3),
    options,
    st.sampled_from(
        [[], ["--max-entries", "0"], ["--max-bytes", "1e3"], ["--max-depth", "-1"], ["--by", "\x1b[2J"]]
    ),
).map(lambda t: [*t[3], t[0], *t[1], *t[2]])


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """receive's framed stream: headers right and wrong, payloads short, long or corrupt."""
    data = draw(st.binary(max_size=32))
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    header = draw(
        st.sampled_from(
            [
                f"blob {good} {len(data)} 0",
                f"blob {good} {len(data)} {len(data) + 1}",
                f"blob {good} {10**30} 0",
                f"blob sha256:{HEX} {len(data)} 0",
                f"blob {good} -1 0",
                f"blob {good}\n {len(data)} 0",
                "blob ../../x 1 0",
                "end",
                "",
                "x" * 70000,
            ]
        )
    )
    payload = draw(st.sampled_from([data, data[:-1], data + b"extra", b""]))
    tail = draw(st.sampled_from([b"end\n", b"", b"\n", b"end"]))
    return header.encode("utf-8", "surrogateescape") + b"\n" + payload + tail


@examples(80)
@given(
    arguments,
    st.one_of(
        streams(), st.binary(max_size=64), s.hostile_text.map(lambda t: t.encode("utf-8", "surrogateescape"))
    ),
)
def test_agent_message(argv: list[str], stdin: bytes) -> None:
    with sandbox() as box:
        node = Node(box)
        box.seal()
        check("agent message", node.run(argv, stdin))


@examples(40)
@given(streams())
def test_agent_receive_stream(stdin: bytes) -> None:
    with sandbox() as box:
        node = Node(box)
        box.seal()
        check("agent message", node.run(["receive"], stdin))


STATE = {
    "env": "e1",
    "runtime": "prefix",
    "current": {"digest": f"sha256:{HEX}", "at": 1, "by": "x", "fingerprint": "f"},
    "previous": None,
}


@examples(40)
@given(
    st.sampled_from(["state", "epochs"]),
    st.one_of(s.replaced(STATE).map(lambda d: json.dumps(d, default=str)), s.mutated([json.dumps(STATE)])),
    st.sampled_from(
        [["state"], ["state", "e1", "--verify"], ["gc"], ["epoch", "e1"], ["prepare", "e1", f"sha256:{HEX}"]]
    ),
)
def test_agent_state_files(folder: str, text: str, argv: list[str]) -> None:
    with sandbox() as box:
        node = Node(box)
        (node.store / folder / "e1.json").write_text(text, errors="surrogateescape")
        (node.store / "state" / "e2.json").write_text(json.dumps({**STATE, "env": "e2"}))
        box.seal()
        check("agent state file", node.run(argv))


# ---------------------------------------------------------------- OCI layouts, through push
def _put(root: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


@st.composite
def layouts(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """The files of an OCI layout (relative path, bytes): a valid one with index.json, the
    manifest or the config replaced by a hostile document (re-hashed, so the digest checks pass
    and the parser itself is reached), or with hostile layers."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "img"
        raw_layers: list[Any] = draw(
            st.one_of(
                st.just(app_layers("1")), layers().map(lambda ls: [layer_bytes(x, Path("/")) for x in ls])
            )
        )
        try:
            write_layout(root, raw_layers)
        except (ValueError, UnicodeError):
            write_layout(root, app_layers("1"))
        index = json.loads((root / "index.json").read_text())
        (mdesc,) = index["manifests"]
        manifest = json.loads((root / "blobs" / "sha256" / mdesc["digest"][7:]).read_text())
        config = json.loads((root / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text())
        which = draw(st.sampled_from(["index", "manifest", "config", "layers", "marker", "text"]))
        if which == "config":
            config = draw(s.replaced(config))
        if which in ("config", "manifest"):
            if which == "config":
                manifest["config"].update(_put(root, json.dumps(config, default=str).encode()))
            else:
                manifest = draw(s.replaced(manifest))
            body = json.dumps(manifest, default=str).encode()
            index["manifests"][0].update({"mediaType": MANIFEST, **_put(root, body)})
        if which == "index":
            index = draw(s.replaced(index))
        text = json.dumps(index, default=str)
        if which == "text":
            text = draw(s.mutated([text]))
        for marker, raw in s.RAW.items():
            text = text.replace(f'"{marker}"', raw.replace("{a = ", '{"a": ').replace("=", ":"))
        (root / "index.json").write_text(text, errors="surrogateescape")
        if which == "marker":
            (root / "oci-layout").write_text(
                draw(s.mutated(['{"imageLayoutVersion": "1.0.0"}'])), errors="surrogateescape"
            )
        return [(str(p.relative_to(root)), p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


@contextlib.contextmanager
def local_nodes(box: Sandbox) -> Iterator[Path]:
    """An inventory of one prefix node whose store and prefix root lie in target/out, reached
    through LocalTransport instead of SSH (the agent runs for real, as a subprocess)."""
    import pytest
    from nd_local import LocalPool

    inventory = box.write(
        "inventory.toml",
        '[defaults]\nssh_config = ""\n[nodes.n1]\nhost = "localhost"\nruntime = "prefix"\n'
        f'store = "{box.out / "store"}"\nprefix_root = "{box.out / "envs"}"\n'
        f'python = "{sys.executable}"\n',
    )

    @contextlib.contextmanager
    def pool(_accept: bool) -> Iterator[LocalPool]:
        yield LocalPool()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("envctl.cli.nodes_common.ssh_pool", pool)
        mp.setattr("envctl.cli.push.ssh_pool", pool, raising=False)
        yield inventory


@examples(25)
@given(layouts())
def test_oci_layout_push(files: list[tuple[str, bytes]]) -> None:
    with sandbox() as box:
        image = box.inputs / "img"
        for rel, data in files:
            box.write(f"img/{rel}", data)
        with local_nodes(box) as inventory:
            box.seal()
            check("oci layout", judge_cli(box, ["push", str(image), "-i", str(inventory), "--env", "e1"]))


# ---------------------------------------------------------------- ledger rows
COLUMNS = ("at", "who", "kind", "subject", "targets", "outcome", "details")
GOOD_ROW = {
    "at": 1_700_000_000.0,
    "who": "u@h",
    "kind": "push",
    "subject": f"sha256:{HEX}",
    "targets": '["n1"]',
    "outcome": "ok",
    "details": json.dumps({"env": "e1", "nodes": {"n1": {"status": "ok", "digest": f"sha256:{HEX}"}}}),
}
cells = st.one_of(
    s.hostile_text,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),  # SQLite stores NaN as NULL, which these columns refuse
    st.binary(max_size=16),
    s.replaced(json.loads(GOOD_ROW["details"])).map(lambda d: json.dumps(d, default=str)),
    st.sampled_from(["[" * 5000, '{"env": "e1", "nodes": [1]}', '{"a": ' + "9" * 5000 + "}", "null"]),
)
rows = st.fixed_dictionaries({k: st.one_of(st.just(v), cells) for k, v in GOOD_ROW.items()})


def _storable(value: Any) -> Any:
    """A string SQLite cannot take as text (a lone surrogate) goes in as the bytes it stands for."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
    return value


def insert_rows(box: Sandbox, rows: list[dict[str, Any]]) -> None:
    """The rows, as another program (or a damaged disk) might have left them, into a ledger
    envctl made."""
    import sqlite3

    from envctl.adapters import ledger

    ledger.record("lock", "x", [], "ok", {})
    with contextlib.closing(sqlite3.connect(ledger.ledger_path())) as db, db:
        for row in rows:
            db.execute(
                "INSERT INTO events (at, who, kind, subject, targets, outcome, details) VALUES (?,?,?,?,?,?,?)",
                tuple(_storable(row[c]) for c in COLUMNS),
            )


@examples(40)
@given(st.lists(rows, min_size=1, max_size=3), st.sampled_from([[], ["--json"], ["--kind", "push"]]))
def test_ledger_rows(hostile: list[dict[str, Any]], flags: list[str]) -> None:
    from envctl.adapters import ledger

    with sandbox() as box:
        insert_rows(box, hostile)
        box.seal()
        check("ledger row", judge_cli(box, ["history", *flags]))
        check("ledger row", call(box, ledger.desired))
