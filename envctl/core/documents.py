"""Parsing TOML, JSON and YAML that someone else wrote, within bounds: a 1 KB file never costs a
gigabyte, and no shape of input ends in a traceback.

Pure (text in, values out). Every parser here:

- refuses a text over ``MAX_BYTES`` before parsing it;
- turns the parser's own errors, ``RecursionError`` (deep nesting) and ``ValueError`` (an integer
  over Python's 4,300-digit limit) into one ``error`` naming ``where``;
- refuses a result nested deeper than ``MAX_DEPTH`` (dotted TOML keys nest without recursion);
- for YAML, checks the composed node graph before anything is built from it: aliases may share
  a node (anchors are common in Ansible inventories) but the document they describe may not
  expand to more than ``MAX_EXPANSION`` times its text (a "billion laughs" of 1 KB is refused),
  and an alias may not contain itself.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from envctl.core.shown import one_line
from envctl.errors import EnvctlError, InputError

#: the largest user file read (a lock of a big CUDA stack is a few MB)
MAX_BYTES = 64 << 20
#: the deepest nesting of tables and lists (an Ansible inventory nests groups 2 levels each)
MAX_DEPTH = 100
#: how many times its own size a YAML document may grow through aliases
MAX_EXPANSION = 10
_MIN_BUDGET = 100_000


def _size(text: str | bytes, where: str, error: type[EnvctlError]) -> None:
    if len(text) > MAX_BYTES:
        raise error(
            f"{where}: {len(text)} bytes, more than the {MAX_BYTES >> 20} MiB envctl reads",
            hint="is this the right file?",
        )


def check_depth(value: Any, where: str, error: type[EnvctlError] = InputError) -> Any:
    """``value`` when its lists and mappings nest at most ``MAX_DEPTH`` deep (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list, tuple)) or id(item) in seen:
            continue
        if depth >= MAX_DEPTH:
            raise error(f"{where}: nested deeper than {MAX_DEPTH} levels", hint="is this the right file?")
        seen.add(id(item))
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return value


def loads_toml(text: str, where: str, error: type[EnvctlError] = InputError) -> dict[str, Any]:
    """A TOML document, bounded; ``error`` names ``where`` and the line for a syntax error."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    _size(text, where, error)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(
            f"{where}: malformed TOML: {one_line(str(exc))}", hint="fix the syntax at that line"
        ) from exc
    except RecursionError:
        raise error(f"{where}: malformed TOML: nested too deeply", hint="is this the right file?") from None
    except ValueError as exc:  # an integer over the 4,300-digit limit
        raise error(
            f"{where}: malformed TOML: {one_line(str(exc))}", hint="is this the right file?"
        ) from None
    check_depth(data, where, error)
    return data


def loads_json(text: str | bytes, where: str, error: type[EnvctlError] = InputError) -> Any:
    """A JSON document, bounded."""
    _size(text, where, error)
    try:
        data = json.loads(text)
    except RecursionError:
        raise error(f"{where}: not JSON: nested too deeply", hint="is this the right file?") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise error(f"{where}: not JSON ({one_line(str(exc))})", hint="is this the right file?") from None
    return check_depth(data, where, error)


def loads_yaml(text: str, where: str, error: type[EnvctlError] = InputError) -> Any:
    """A YAML document (safe types only), bounded; None for an empty document."""
    import yaml  # type: ignore[import-untyped]

    _size(text, where, error)
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(node, max(_MIN_BUDGET, MAX_EXPANSION * len(text)), where, error)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise error(
            f"{where}: malformed YAML ({one_line(str(exc))})", hint="fix the syntax at that line"
        ) from exc
    except RecursionError:
        raise error(f"{where}: malformed YAML: nested too deeply", hint="is this the right file?") from None
    except (ValueError, TypeError, OverflowError) as exc:  # a huge integer, an unhashable key
        raise error(
            f"{where}: malformed YAML ({one_line(str(exc))})", hint="is this the right file?"
        ) from None
    finally:
        loader.dispose()
    return data


def _children(node: Any) -> list[Any]:
    if node.id == "mapping":  # (key, value) pairs
        return [part for pair in node.value for part in pair]
    return list(node.value) if node.id == "sequence" else []


def _check_graph(root: Any, budget: int, where: str, error: type[EnvctlError]) -> None:
    """Weigh the YAML node graph as the document it expands to (each node once per reference,
    plus its text), depth first without recursion, memoised so shared nodes cost one visit."""
    weight: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            text = len(node.value) if isinstance(node.value, str) else 0
            weight[key] = 1 + text + sum(weight[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            open_nodes.discard(key)
            if weight[key] > budget:
                raise error(
                    f"{where}: YAML aliases expand the document to over {budget} nodes and characters",
                    hint="aliases (*name) may share data, not multiply it; write the data out",
                )
            if depth[key] > MAX_DEPTH:
                raise error(f"{where}: nested deeper than {MAX_DEPTH} levels", hint="is this the right file?")
            continue
        if key in weight:
            continue
        if key in open_nodes:
            raise error(
                f"{where}: a YAML alias refers to itself", hint="aliases may not contain their anchor"
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in weight)
