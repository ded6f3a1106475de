"""The envctl commands the README, docs/ and the CI examples show are ones envctl accepts.

Each command is parsed by the real click group (``make_context`` down to the subcommand), so an
unknown command or option, a missing argument or a bad value fails here, not in a user's CI.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

from envctl.cli import cli

ROOT = Path(__file__).resolve().parents[2]
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CI_FILES = sorted((ROOT / "docs" / "ci").glob("*.yml"))
SHELL_FENCES = {"sh", "bash", "shell", "console"}
SEPARATORS = {"&&", "||", "|", ";", "&", "(", ")"}
REDIRECTS = {">", ">>", "<", "<<", ">&", "<&"}
PREFIXES = {"sudo", "env", "command", "exec", "time", "nohup"}


# -- where the commands are ---------------------------------------------------------------------
def markdown_shell_lines(text: str) -> Iterator[str]:
    """Shell lines of a Markdown file: fenced sh/bash/console blocks, and prompt-like lines
    (``$ ...``, ``envctl ...``, ``... && ...``) of indented or unlabelled blocks."""
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else (stripped[3:].strip() or "")
            continue
        if fence is not None and fence not in SHELL_FENCES and fence != "":
            continue
        if fence is None and not line.startswith("    "):
            continue
        if fence in SHELL_FENCES and fence != "console":
            yield stripped
        elif stripped.startswith("$ "):
            yield stripped[2:]
        elif re.match(r"^(\S*/)?envctl\s", stripped) or " && " in stripped:
            yield stripped


def ci_shell_lines(data: object) -> Iterator[str]:
    """Every shell line of a GitHub workflow (``steps[].run``) or a GitLab CI file (``script``s)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "run" and isinstance(value, str):
                yield from value.splitlines()
            elif key in ("script", "before_script", "after_script") and isinstance(value, list):
                yield from (line for item in value for line in str(item).splitlines())
            else:
                yield from ci_shell_lines(value)
    elif isinstance(data, list):
        for item in data:
            yield from ci_shell_lines(item)


def joined(lines: Iterator[str]) -> Iterator[str]:
    """Lines with their backslash continuations joined."""
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def envctl_commands(line: str) -> Iterator[list[str]]:
    """The argument lists of every ``envctl`` command of one shell line (after sudo/env)."""
    # expansions stand for one word each: ${{ expr }}, $(cmd), $VAR, ${VAR}
    line = re.sub(r"\$\{\{.*?\}\}", "X", line)
    line = re.sub(r"\$\((?:[^()]|\([^()]*\))*\)", "X", line)
    line = re.sub(r"\$\{?[A-Za-z_]\w*\}?", "X", line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for token in [*lexer, ";"]:
        if token not in SEPARATORS:
            words.append(token)
            continue
        while words and (words[0] in PREFIXES or words[0].startswith("-") or re.match(r"^\w+=", words[0])):
            words.pop(0)
        if words and re.fullmatch(r"(\S*/)?envctl", words[0]):
            args, rest = [], iter(words[1:])
            for word in rest:
                if word in REDIRECTS:
                    next(rest, None)  # the redirect's file
                else:
                    args.append(word)
            yield args
        words = []


def documented() -> dict[str, list[list[str]]]:
    """file -> the envctl commands it shows."""
    found: dict[str, list[list[str]]] = {}
    for path in MARKDOWN:
        lines = joined(markdown_shell_lines(path.read_text()))
        found[path.relative_to(ROOT).as_posix()] = [c for line in lines for c in envctl_commands(line)]
    for path in CI_FILES:
        lines = joined(ci_shell_lines(yaml.safe_load(path.read_text())))
        found[path.relative_to(ROOT).as_posix()] = [c for line in lines for c in envctl_commands(line)]
    return found


# -- parsing them the way envctl does -----------------------------------------------------------
def parse(args: list[str]) -> str:
    """Parse ``envctl ARGS`` with the real click group down to its leaf; returns the command path.

    Raises click.UsageError (unknown command or option, bad value, missing argument).
    """
    try:
        ctx = cli.make_context("envctl", list(args))
        command: click.Command = cli
        while isinstance(command, click.Group):
            protected = ctx.__dict__.get("_protected_args")
            rest = [*(ctx.protected_args if protected is None else protected), *ctx.args]
            name, sub, rest = command.resolve_command(ctx, rest)
            assert sub is not None and name is not None
            ctx = sub.make_context(name, rest, parent=ctx)
            command = sub
        return ctx.command_path
    except click.exceptions.Exit as exc:  # --help, --version
        if exc.exit_code:
            raise
        return "envctl"


DOCUMENTED = documented()
CASES = [
    (f, " ".join(shlex.quote(a) for a in args)) for f, commands in DOCUMENTED.items() for args in commands
]


@pytest.mark.parametrize(("source", "command"), CASES)
def test_documented_command_parses(source: str, command: str) -> None:
    try:
        parse(shlex.split(command))
    except click.UsageError as exc:
        pytest.fail(f"{source}: `envctl {command}`: {exc.format_message()}")


def test_the_examples_are_found() -> None:
    counts = {source: len(commands) for source, commands in DOCUMENTED.items()}
    assert counts["docs/ci/github-actions.yml"] >= 6 and counts["docs/ci/gitlab-ci.yml"] >= 6, counts
    assert counts["docs/cluster.md"] >= 4 and counts["README.md"] >= 3, counts
    paths = {parse(args) for args in DOCUMENTED["docs/ci/github-actions.yml"]}
    assert {"envctl lock", "envctl build", "envctl push", "envctl base build"} <= paths


def test_a_wrong_command_is_caught() -> None:
    with pytest.raises(click.UsageError, match="No such option"):
        parse(["lock", "p.toml", "--chek"])
    with pytest.raises(click.UsageError):
        parse(["push", "image.oci"])  # -i is required
    with pytest.raises(click.UsageError):
        parse(["matrix", "shwo", "torch"])
    (words,) = envctl_commands('sudo -E env "PATH=$PATH" envctl base build x --json > out.json && rm -f y')
    assert words == ["base", "build", "x", "--json"]


def test_the_ci_examples_run_when_the_lock_changes() -> None:
    github = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions.yml").read_text())
    triggers = github.get("on", github.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "conda-lock.yml" in triggers["push"]["paths"]
    gitlab = yaml.safe_load((ROOT / "docs" / "ci" / "gitlab-ci.yml").read_text())
    assert "conda-lock.yml" in gitlab[".on-lock-change"]["rules"][0]["changes"]
    assert {job for job, spec in gitlab.items() if isinstance(spec, dict) and "script" in spec} >= {
        "image",
        "deploy",
    }


def test_no_doc_installs_the_unrelated_envctl_from_pypi() -> None:
    wrong = re.compile(r"(pip|pipx|uv pip|uv tool) install\s+(-\S+\s+)*envctl(?![-\w.])")
    for path in [*MARKDOWN, *CI_FILES]:
        assert not wrong.search(path.read_text()), f"{path}: installs PyPI's envctl, not envctl-cluster"


def _cluster_inventory() -> str:
    text = (ROOT / "docs" / "cluster.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", text, re.S)
    return block


def test_the_site_inventory_loads(tmp_path: Path) -> None:
    from envctl.adapters.inventory_file import load_inventory

    path = tmp_path / "inventory.toml"
    path.write_text(_cluster_inventory())
    inventory = load_inventory(path)
    assert len(inventory.nodes) == 64 + 16 + 2
    assert {n.jump.host for n in inventory.nodes if n.jump} == {"bastion.hpc.example.org"}
    assert all(n.user == "svc-envctl" for n in inventory.nodes)
    assert "bastion.hpc.example.org" not in {n.name for n in inventory.nodes}


def test_the_site_inventory_is_valid_apart_from_become(tmp_path: Path) -> None:
    from envctl.adapters.inventory_file import load_inventory

    text = "\n".join(line for line in _cluster_inventory().splitlines() if not line.startswith("become"))
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    inventory = load_inventory(path)
    assert len(inventory.nodes) == 82 and inventory.groups["h100"][0] == "gpu001"
    assert inventory.node("a100-16").runtime == "docker" and inventory.node("login1").store.startswith(
        "/scratch"
    )
