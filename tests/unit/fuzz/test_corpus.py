"""The hostile corpus (tests/fixtures/hostile/): every file goes through the command that reads
it and ends, quickly, in one line of error and one of hint with exit 2 (the node agent: one JSON
error of a named kind, exit 3), with no traceback and nothing written outside its target
(findings 2, 3, 6, 10-14). cases.toml names the command of each file or folder."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from envctl.adapters.files import tomllib

from .harness import FIXTURES, Outcome, Sandbox, check, judge, judge_cli, run_cli, sandbox
from .test_fuzz_node import Node, insert_rows, local_nodes

sys.path.insert(0, str(FIXTURES / "nodes"))
from nd_oci import write_image_blobs

HOSTILE = FIXTURES / "hostile"
MANIFEST = tomllib.loads((HOSTILE / "cases.toml").read_text())
CASES: list[dict[str, Any]] = MANIFEST["case"] + [
    {
        "file": f"{folder['folder']}/{entry.name}",
        "command": folder["command"],
        "accepted": entry.name in folder.get("accepted", ()),
    }
    for folder in MANIFEST["folder"]
    for entry in sorted((HOSTILE / folder["folder"]).iterdir())
]
#: seconds one case may take (each took 60 s, ran out of memory or never ended before)
LIMIT_S = 10.0

COMMANDS = {
    "export": ["export", "{file}", "--format", "requirements"],
    "render": ["render", "{file}", "--dockerfile", "{out}"],
    "solve": ["solve", "{file}"],
    "inventory-show": ["inventory", "show", "-i", "{file}"],
    "import": ["inventory", "import", "{file}"],
}


def test_every_file_of_the_corpus_has_a_case() -> None:
    folders = {f["folder"] for f in MANIFEST["folder"]}
    files = {str(p.relative_to(HOSTILE)) for p in HOSTILE.glob("*/*") if p.parent.name not in folders}
    assert files == {case["file"] for case in MANIFEST["case"]}
    assert all(any((HOSTILE / f).iterdir()) for f in folders)


def _copy_in(box: Sandbox, case: dict[str, Any]) -> Path:
    source = HOSTILE / case["file"]
    if source.is_dir():
        shutil.copytree(source, box.inputs / source.name)
        return box.inputs / source.name
    return box.write(source.name, source.read_bytes())


def _agent(box: Sandbox, case: dict[str, Any], path: Path) -> Outcome:
    node = Node(box)
    (node.prefix / "other@1").mkdir()
    (node.prefix / "other@1" / "file").write_text("other env")
    os.symlink("other@1", node.prefix / "other")
    if case["command"] == "agent-prepare":
        digest = str(write_image_blobs(node.store, [path.read_bytes()])["digest"])
        argv, stdin = ["prepare", "e1", digest], b""
    else:
        message = json.loads(path.read_text())
        argv, stdin = message["argv"], message.get("stdin", "").encode("latin-1")
    box.seal()
    root = os.lstat("/")
    outcome = node.run(argv, stdin)
    if (os.lstat("/").st_mode, os.lstat("/").st_mtime_ns) != (root.st_mode, root.st_mtime_ns):
        return Outcome("lost", "the layer changed /")
    if outcome.kind == "accepted":
        if case.get("accepted"):
            return outcome
        return Outcome("lost", f"the agent accepted {argv[:2]}")
    intact = (node.prefix / "other" / "file").read_text() == "other env"
    if not intact or [n for n in os.listdir(node.prefix) if n.startswith("e1")]:
        return Outcome("lost", f"prepare touched the prefix root: {sorted(os.listdir(node.prefix))}")
    return outcome


def _history(box: Sandbox, path: Path) -> Outcome:
    insert_rows(box, [json.loads(path.read_text())])
    box.seal()
    for flags in ([], ["--json"]):
        code, stdout, stderr, escaped = run_cli(["history", *flags])
        outcome = judge(box, code, stderr, escaped, results=(0,), command="history")
        if outcome.kind != "accepted":
            return outcome
        if flags:
            json.loads(stdout)  # one document, whatever the row held
    return outcome


def _matrix(box: Sandbox, path: Path) -> Outcome:
    matrix = box.inputs / "matrix"
    shutil.copytree(FIXTURES / "matrix_small", matrix)
    (matrix / (path.name.split("-")[0] + ".toml")).write_bytes(path.read_bytes())
    box.seal()
    return judge_cli(box, ["matrix", "validate", "--matrix", str(matrix)], results=())


def _run(box: Sandbox, case: dict[str, Any]) -> Outcome:
    path = _copy_in(box, case)
    command = case["command"]
    if command.startswith("agent"):
        return _agent(box, case, path)
    if command == "history":
        return _history(box, path)
    if command == "matrix":
        return _matrix(box, path)
    if command == "push":
        with local_nodes(box) as inventory:
            box.seal()
            return judge_cli(box, ["push", str(path), "-i", str(inventory), "--env", "e1"], results=())
    box.seal()
    args = [a.format(file=path, out=box.out / "ctx") for a in COMMANDS[command]]
    outcome = judge_cli(box, args, results=())
    if outcome.kind == "refused" and case.get("fragment", "") not in outcome.why:
        return Outcome("lost", f"refused for another reason: {outcome.why[:300]}")
    return outcome


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_a_hostile_file_is_refused_in_one_line(case: dict[str, Any]) -> None:
    with sandbox() as box:
        start = time.monotonic()
        outcome = _run(box, case)
        seconds = time.monotonic() - start
        category = case["file"].split("/")[0]
        check(category, outcome, source="corpus")
        assert seconds < LIMIT_S, f"took {seconds:.1f}s"
        if case["command"] in COMMANDS:
            assert not (box.out / "ctx").exists()
            assert sorted(os.listdir(box.out)) == []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
