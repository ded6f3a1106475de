"""Errors of the schema reader name file and key path on one line, whatever the key holds."""

from __future__ import annotations

import pytest

from envctl.core.schema import Table
from envctl.errors import InputError


def test_an_unknown_key_with_a_newline_is_named_on_one_line() -> None:
    table = Table({"torch": {"\n": 0}}, "p.toml").table("torch")
    with pytest.raises(InputError) as err:
        table.done()
    assert err.value.message == "p.toml: torch.\\n: unknown key"
