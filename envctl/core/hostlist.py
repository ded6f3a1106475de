"""Hostlist expressions as cluster schedulers write them: ``gpu[001-064]``, ``gpu[01-04,07]``.

Pure: strings in, tuples of names out. A pattern may hold several bracket groups
(``rack[1-2]-gpu[01-04]`` expands to their product, left group slowest), and a range keeps the
zero padding of its lower bound. Expansion is capped so a typo cannot ask for a billion names.
"""

from __future__ import annotations

import re

from envctl.errors import InputError

#: the most names one expression may expand to
MAX_HOSTS = 100_000

_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_NAME_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def _expand_group(body: str, pattern: str) -> list[str]:
    if not body:
        raise InputError(f"hostlist {pattern!r}: empty brackets")
    values: list[str] = []
    for item in body.split(","):
        match = _RANGE.match(item.strip())
        if match is None:
            raise InputError(
                f"hostlist {pattern!r}: {item!r} is not a number or a range",
                hint="write ranges as [001-064] and lists as [01-04,07]",
            )
        low, high = match.group(1), match.group(2)
        if high is None:
            values.append(low)
            continue
        if int(high) < int(low):
            raise InputError(f"hostlist {pattern!r}: range {item!r} runs backwards")
        if int(high) - int(low) + 1 > MAX_HOSTS:
            raise InputError(f"hostlist {pattern!r}: range {item!r} is over {MAX_HOSTS} names")
        width = len(low) if low.startswith("0") and len(low) > 1 else 1
        values.extend(str(n).zfill(width) for n in range(int(low), int(high) + 1))
    return values


def expand(pattern: str) -> tuple[str, ...]:
    """Expand one hostlist expression into node names, in order, without duplicates."""
    pattern = pattern.strip()
    if not pattern:
        raise InputError("hostlist: empty name")
    pieces: list[list[str]] = []
    pos = 0
    for match in _BRACKET.finditer(pattern):
        pieces.append([pattern[pos : match.start()]])
        pieces.append(_expand_group(match.group(1), pattern))
        pos = match.end()
    pieces.append([pattern[pos:]])
    total = 1
    for options in pieces:
        total *= len(options)
        if total > MAX_HOSTS:
            raise InputError(f"hostlist {pattern!r}: expands to over {MAX_HOSTS} names")
    names: list[str] = [""]
    for options in pieces:
        names = [prefix + option for prefix in names for option in options]
    for name in names:
        if not _NAME_CHARS.match(name):
            raise InputError(
                f"hostlist {pattern!r}: {name!r} is not a valid node name",
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
    """Expand several expressions (each may be a comma list) into one ordered, unique tuple."""
    names: dict[str, None] = {}
    for expression in expressions:
        for part in split(expression):
            names.update(dict.fromkeys(expand(part)))
            if len(names) > MAX_HOSTS:
                raise InputError(f"hostlist: over {MAX_HOSTS} names in total")
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
