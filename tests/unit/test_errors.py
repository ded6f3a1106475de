"""The error tree drawn in envctl/errors.py is the one the code has, exit codes included."""

from __future__ import annotations

import importlib
import pkgutil
import re

import envctl
from envctl import errors
from envctl.errors import EnvctlError

LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)\s+(\[(?P<module>[\w.]+)\] )?(?P<text>.*)$")


def drawn_tree() -> dict[str, tuple[str | None, int, str]]:
    """class name -> (parent's name, exit code, module) as the module docstring draws them."""
    tree: dict[str, tuple[str | None, int, str]] = {}
    stack: list[tuple[int, str, int]] = []  # (depth, name, exit code)
    for line in (errors.__doc__ or "").splitlines():
        m = LINE.match(line.strip("\n")[4:]) if line.startswith("    ") else None
        if m is None:
            continue
        depth = len(m["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1] if stack else None
        code = re.search(r"\(exit (\d)\)", m["text"])
        exit_code = int(code[1]) if code else (parent[2] if parent else 2)
        tree[m["name"]] = (parent[1] if parent else None, exit_code, f"envctl.{m['module'] or 'errors'}")
        stack.append((depth, m["name"], exit_code))
    return tree


def every_error_class() -> set[type[EnvctlError]]:
    for module in pkgutil.walk_packages(envctl.__path__, "envctl."):
        if module.name != "envctl.__main__":
            importlib.import_module(module.name)
    found: set[type[EnvctlError]] = set()
    todo = [EnvctlError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return found


def test_every_error_class_is_in_the_drawn_tree_with_its_parent_and_exit_code() -> None:
    tree = drawn_tree()
    classes = every_error_class()
    assert {cls.__name__ for cls in classes} == set(tree)
    for cls in classes:
        parent, exit_code, module = tree[cls.__name__]
        assert cls.__module__ == module, f"{cls.__name__} is drawn in {module}, lives in {cls.__module__}"
        assert (cls.__bases__[0].__name__ if parent else None) == parent, cls
        assert cls.exit_code == exit_code, f"{cls.__name__}: exit {cls.exit_code}, drawn {exit_code}"


def test_the_rule_bad_input_2_remote_source_1() -> None:
    assert errors.InputError("x").exit_code == 2
    assert errors.TransportError("https://pypi.org/simple", "cannot reach the index").exit_code == 1
    agent = errors.AgentError("n1", "disk full", "nospace", "free space")
    assert agent.exit_code == 1 and agent.message == "n1: disk full" and agent.node == "n1"
    assert agent.details == {"agent_error": "nospace"} and agent.source == "n1"


def test_no_module_raises_the_bare_root() -> None:
    import ast
    from pathlib import Path

    bare = []
    for path in Path(envctl.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "EnvctlError":
                bare.append(f"{path.name}:{node.lineno}")
    assert bare == [], "raise a class of the tree (InputError, RemoteSourceError, ...), not the root"


def test_a_message_that_escaped_the_value_cutter_is_still_bounded() -> None:
    from envctl.errors import MAX_MESSAGE, EnvctlError, RemoteError

    for exc in (EnvctlError("x" * 10**6, hint="h" * 10**6), RemoteError("n1", "y" * 10**6)):
        assert len(exc.message) <= MAX_MESSAGE and exc.message.endswith("chars)")
    assert EnvctlError("short", "hint").message == "short"
