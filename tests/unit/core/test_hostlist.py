import pytest

from envctl.core import hostlist
from envctl.errors import InputError


def test_zero_padded_range_keeps_width() -> None:
    names = hostlist.expand("gpu[001-064]")
    assert len(names) == 64
    assert names[0] == "gpu001" and names[9] == "gpu010" and names[-1] == "gpu064"


def test_list_of_ranges_and_singles() -> None:
    assert hostlist.expand("gpu[01-04,07]") == ("gpu01", "gpu02", "gpu03", "gpu04", "gpu07")


def test_unpadded_range_and_suffix() -> None:
    assert hostlist.expand("n[8-11].ib") == ("n8.ib", "n9.ib", "n10.ib", "n11.ib")


def test_several_groups_expand_to_their_product_in_order() -> None:
    assert hostlist.expand("r[1-2]-g[1-2]") == ("r1-g1", "r1-g2", "r2-g1", "r2-g2")


def test_plain_name_and_duplicates_removed() -> None:
    assert hostlist.expand("login1") == ("login1",)
    assert hostlist.expand("a[1,1,2]") == ("a1", "a2")


def test_split_and_expand_all_respect_brackets() -> None:
    assert hostlist.split("gpu[01-02,05],login1") == ("gpu[01-02,05]", "login1")
    assert hostlist.expand_all(["gpu[1-2]", "login1,gpu2"]) == ("gpu1", "gpu2", "login1")


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("gpu[]", "empty brackets"),
        ("gpu[4-1]", "backwards"),
        ("gpu[a-c]", "not a number or a range"),
        ("gpu[1-2", "not a valid node name"),
        ("bad name", "not a valid node name"),
        ("x[0-99999999]", "over"),
    ],
)
def test_bad_patterns_are_named(pattern: str, words: str) -> None:
    with pytest.raises(InputError) as err:
        hostlist.expand(pattern)
    assert words in err.value.message
    assert repr(pattern) in err.value.message


def test_product_cap() -> None:
    with pytest.raises(InputError, match="over"):
        hostlist.expand("a[1-1000]b[1-1000]")
