import tomllib
from hypothesis import given
from hypothesis import strategies as st

from envctl.core import toml_out

scalars = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
)
keys = st.text(min_size=1, max_size=10)
documents = st.dictionaries(keys, st.one_of(scalars, st.dictionaries(keys, scalars, max_size=3)), max_size=5)


@given(documents)
def test_round_trip(document: dict[str, object]) -> None:
    assert tomllib.loads(toml_out.dumps(document)) == document


def test_nested_tables_and_none_dropped() -> None:
    text = toml_out.dumps({"nodes": {"gpu[01]": {"port": 22, "key": None}}, "top": "x"})
    assert tomllib.loads(text) == {"top": "x", "nodes": {"gpu[01]": {"port": 22}}}
    assert '[nodes."gpu[01]"]' in text


def test_key_with_trailing_newline_is_quoted() -> None:
    # found by hypothesis: a regex `$` also matches before a final newline
    assert tomllib.loads(toml_out.dumps({"0\n": ""})) == {"0\n": ""}
