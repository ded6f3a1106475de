"""Hostlist expressions as cluster schedulers write them: ``gpu[001-064]``, ``gpu[01-04,07]``.

Pure: strings in, tuples of names out. A pattern may hold several bracket groups
(``rack[1-2]-gpu[01-04]`` expands to their product, left group slowest), and a range keeps the
zero padding of its lower bound. Expansion is capped so a typo cannot ask for a billion names.
"""

from __future__ import annotations

import re

from envctl.core.names import decimal
from envctl.core.shown import shown
from envctl.errors import InputError

#: the most names one expression may expand to
MAX_HOSTS = 100_000
#: the longest node name (a DNS name has at most 253 characters)
MAX_NAME = 253

_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


_HINT = "write ranges as [001-064] and lists as [01-04,07]"


def _group(body: str, pattern: str) -> list[tuple[int, int, int]]:
    """The ``(low, high, width)`` ranges of one bracket group, checked, nothing expanded."""
    if not body:
        raise InputError(f"hostlist {shown(pattern)}: empty brackets", hint=_HINT)
    ranges = []
    for item in body.split(","):
        match = _RANGE.fullmatch(item.strip())
        if match is None:
            raise InputError(
                f"hostlist {shown(pattern)}: {shown(item)} is not a number or a range", hint=_HINT
            )
        low_text, high_text = match.group(1), match.group(2) or match.group(1)
        low, high = decimal(low_text, 12), decimal(high_text, 12)
        if low is None or high is None:
            raise InputError(
                f"hostlist {shown(pattern)}: {shown(item)} has numbers of over 12 digits", hint=_HINT
            )
        if high < low:
            raise InputError(f"hostlist {shown(pattern)}: range {shown(item)} runs backwards", hint=_HINT)
        width = len(low_text) if low_text.startswith("0") and len(low_text) > 1 else 1
        ranges.append((low, high, width))
    return ranges


def count(pattern: str) -> int:
    """How many names (before duplicates are dropped) ``pattern`` expands to, nothing built;
    InputError when its names would be longer than ``MAX_NAME``."""
    total, longest, pos = 1, 0, 0
    pattern = pattern.strip()
    for match in _BRACKET.finditer(pattern):
        ranges = _group(match.group(1), pattern)
        total *= sum(high - low + 1 for low, high, _ in ranges)
        longest += match.start() - pos + max(max(width, len(str(high))) for _, high, width in ranges)
        pos = match.end()
        if total > MAX_HOSTS:
            break
    if longest + len(pattern) - pos > MAX_NAME:
        raise InputError(f"hostlist {shown(pattern)}: names longer than {MAX_NAME} characters", hint=_HINT)
    return total


def expand(pattern: str) -> tuple[str, ...]:
    """Expand one hostlist expression into node names, in order, without duplicates.

    The names are counted first (every bracket group's size, their product): an expression
    over ``MAX_HOSTS`` is refused before one name is built.
    """
    pattern = pattern.strip()
    if not pattern:
        raise InputError("hostlist: empty name")
    if count(pattern) > MAX_HOSTS:
        raise InputError(f"hostlist {shown(pattern)}: expands to over {MAX_HOSTS} names", hint=_HINT)
    pieces: list[list[str]] = []
    pos = 0
    for match in _BRACKET.finditer(pattern):
        pieces.append([pattern[pos : match.start()]])
        ranges = _group(match.group(1), pattern)
        pieces.append([str(n).zfill(width) for low, high, width in ranges for n in range(low, high + 1)])
        pos = match.end()
    pieces.append([pattern[pos:]])
    names: list[str] = [""]
    for options in pieces:
        names = [prefix + option for prefix in names for option in options]
    for name in names:
        if not _NAME_CHARS.fullmatch(name):
            raise InputError(
                f"hostlist {shown(pattern)}: {shown(name)} is not a valid node name",
                hint="names use letters, digits, '.', '_' and '-'; ranges go in [brackets]",
            )
    return tuple(dict.fromkeys(names))


def split(expression: str) -> tuple[str, ...]:
    """Split ``"gpu[01-02,05],login1"`` on the commas that lie outside brackets."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in expression:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return tuple(part.strip() for part in parts if part.strip())


def expand_all(expressions: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Expand several expressions (each may be a comma list) into one ordered, unique tuple.

    All of them together may name at most ``MAX_HOSTS`` (duplicates counted): counted first.
    """
    parts = [part for expression in expressions for part in split(expression)]
    total = 0
    for part in parts:
        total += count(part)
        if total > MAX_HOSTS:
            raise InputError(f"hostlist: over {MAX_HOSTS} names in total", hint=_HINT)
    names: dict[str, None] = {}
    for part in parts:
        names.update(dict.fromkeys(expand(part)))
    return tuple(names)


_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")


def compress(names: list[str] | tuple[str, ...]) -> str:
    """The shortest hostlist expression of ``names`` as schedulers print it: ``gpu[07-08],login1``.

    Names sharing a prefix, a suffix and the width of their number fold into one bracket group;
    the groups keep the order of their first name. ``expand_all`` of the result gives the names back.
    """
    groups: dict[tuple[str, str, int], list[int]] = {}
    order: dict[object, None] = {}
    for name in dict.fromkeys(names):
        match = _NUMBERED.match(name)
        if match is None:
            order[name] = None
            continue
        digits = match.group(2)
        width = len(digits) if digits.startswith("0") and len(digits) > 1 else 1
        key = (match.group(1), match.group(3), width)
        groups.setdefault(key, []).append(int(digits))
        order[key] = None
    parts = []
    for entry in order:
        if isinstance(entry, str):
            parts.append(entry)
            continue
        assert isinstance(entry, tuple)
        prefix, suffix, width = entry
        numbers = sorted(set(groups[entry]))
        if len(numbers) == 1:
            parts.append(f"{prefix}{str(numbers[0]).zfill(width)}{suffix}")
            continue
        runs: list[str] = []
        start = prev = numbers[0]
        for n in [*numbers[1:], None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            low, high = str(start).zfill(width), str(prev).zfill(width)
            runs.append(low if start == prev else f"{low}-{high}")
            if n is not None:
                start = prev = n
        parts.append(f"{prefix}[{','.join(runs)}]{suffix}")
    return ",".join(parts)
