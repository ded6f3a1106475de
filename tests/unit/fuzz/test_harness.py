"""The judge itself can fail: a write beside the target, a changed input, a traceback, an
error of several lines are each lost, never counted as refused."""

from __future__ import annotations

from .harness import call, judge, sandbox


def test_a_write_beside_the_target_or_into_an_input_is_lost() -> None:
    with sandbox() as box:
        path = box.write("input.toml", "x = 1\n")
        box.seal()
        (box.out / "made-here").write_text("fine")  # outputs go here
        assert judge(box, 0, "", None).kind == "accepted"
        (box.base / "decoy-dir" / "precious.txt").write_text("gone")
        assert "decoy-dir/precious.txt" in judge(box, 2, "error: x\n", None).why
    with sandbox() as box:
        path = box.write("input.toml", "x = 1\n")
        box.seal()
        path.write_text("x = 2\n")
        assert judge(box, 0, "", None).kind == "lost"


def test_tracebacks_and_long_errors_are_lost() -> None:
    with sandbox() as box:
        box.seal()
        assert judge(box, None, "", "Traceback...\nRecursionError: deep\n").kind == "lost"
        assert judge(box, 2, "error: a\nhint: b\nmore\n", None).kind == "lost"
        assert judge(box, 2, "Usage: envctl x\n", None).kind == "lost"
        assert judge(box, 3, "error: a\n", None).kind == "lost"
        assert judge(box, 2, "error: a\nhint: b\n", None).kind == "refused"
        assert call(box, lambda: [][1]).kind == "lost"  # an IndexError is no refusal
