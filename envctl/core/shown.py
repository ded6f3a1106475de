"""How a value from a user's file or a remote answer is shown in a message: one bounded line.

Pure. ``shown`` is the one helper every error uses to echo a value it refuses: a repr (so a
stray newline or control character is visible, and the message stays one line) cut to about
``LIMIT`` characters, the end kept (a trailing ``\\n`` is often the whole story). It never builds
the full repr of a large value first: a YAML "billion laughs" list, a 10 MB string or an integer
of a million digits cost what their first few hundred characters cost.
"""

from __future__ import annotations

import reprlib

#: about the longest echo of one value in a message
LIMIT = 200
_TAIL = 24

_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdeque = 8
_repr.maxdict = 8
_repr.maxstring = LIMIT
_repr.maxlong = 40
_repr.maxother = LIMIT


def shown(value: object, limit: int = LIMIT) -> str:
    """``repr(value)`` on one line, at most about ``limit`` characters (head ... tail)."""
    if isinstance(value, str):
        text = repr(value if len(value) <= 2 * limit else value[:limit] + value[-_TAIL:])
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        # str() of an integer over Python's 4,300-digit limit raises; say what it is instead
        text = f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    else:
        try:
            text = _repr.repr(value)
        except Exception:  # a hostile object's __repr__ must not replace the message
            text = f"<{type(value).__name__}>"
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) <= limit:
        return text
    return f"{text[: limit - _TAIL - 3]}...{text[-_TAIL:]}"


def one_line(text: str, limit: int = 2 * LIMIT) -> str:
    """Free text (an exception's message, a remote's answer) as one line of at most ``limit``."""
    flat = " ".join(text[: 4 * limit].split())
    return flat if len(flat) <= limit else f"{flat[: limit - 3]}..."
