"""What every fuzz test shares: a sandbox whose decoys must stay untouched, one way to run the
CLI (or the node agent) in-process and classify what came back, the hypothesis settings, and the
tally that the report hook prints (tests/unit/fuzz/conftest.py).

An outcome is one of:
  accepted  a result: exit 0, or exit 1 with a printed result (unsatisfiable, a failed node)
  refused   exit 2 with one line of error (and one of hint): envctl's own error type
  lost      anything else: a traceback (an exception other than EnvctlError escaped), several
            lines or an exit code outside the rule, or a write outside the target
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

#: ENVCTL_FUZZ_EXAMPLES=2000 for a deep run; the default keeps the whole fuzz suite well under
#: two minutes on two cores. Deterministic (derandomize) by default so CI is repeatable;
#: ENVCTL_FUZZ_RANDOM=1 explores new inputs on every run.
EXAMPLES = int(os.environ.get("ENVCTL_FUZZ_EXAMPLES", "0") or 0)
settings.register_profile(
    "envctl-fuzz",
    max_examples=EXAMPLES or 40,
    # generous: each case did take 60 s or ran out of memory before; the bound is what is tested,
    # not the speed, so no test asserts a timing otherwise
    deadline=timedelta(seconds=30),
    derandomize=not os.environ.get("ENVCTL_FUZZ_RANDOM"),
    database=None,  # nothing written under the source tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
FUZZ = settings.get_profile("envctl-fuzz")


def examples(n: int) -> settings:
    """The fuzz profile with ``n`` examples (scaled by ENVCTL_FUZZ_EXAMPLES when it is set)."""
    return settings(FUZZ, max_examples=max(1, EXAMPLES * n // 40) if EXAMPLES else n)


# ------------------------------------------------------------------ the tally
#: category -> source ("fuzz" or "corpus") -> outcome -> count
TALLY: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
#: the first few losses of each category, for the report
LOSSES: dict[str, list[str]] = defaultdict(list)


def tally(category: str, outcome: Outcome, source: str = "fuzz") -> None:
    TALLY[category][source][outcome.kind] += 1
    if outcome.kind == "lost" and len(LOSSES[category]) < 3:
        LOSSES[category].append(outcome.why[:300])


# ------------------------------------------------------------------ the sandbox
Snapshot = dict[str, tuple[Any, ...]]


def snapshot(root: Path, skip: tuple[Path, ...] = ()) -> Snapshot:
    """Every path under ``root`` (not following links) with its type, mode, size, mtime and
    link target or content hash; paths under ``skip`` are left out."""
    import hashlib

    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if any(here == s or s in here.parents for s in skip):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = here / name
            if path in skip:
                continue
            st = os.lstat(path)
            extra: Any = None
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, extra)
    st = os.lstat(root)
    out["."] = (st.st_mode, st.st_mtime_ns)
    return out


@dataclass
class Sandbox:
    """``base/`` holds decoys beside ``target/`` (a file, a directory, a symlink to the decoy
    directory) and ``home/`` (HOME, caches, ledger). Inputs go to ``target/in``, outputs and the
    working directory are ``target/out``. After a run everything outside target/out and home/,
    the inputs included, must be exactly as it was."""

    base: Path
    before: Snapshot = field(default_factory=dict)

    @property
    def target(self) -> Path:
        return self.base / "target"

    @property
    def inputs(self) -> Path:
        return self.target / "in"

    @property
    def out(self) -> Path:
        return self.target / "out"

    @property
    def home(self) -> Path:
        return self.base / "home"

    def write(self, name: str, data: str | bytes) -> Path:
        """An input file under target/in."""
        path = self.inputs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        path.write_bytes(data)
        return path

    def seal(self) -> None:
        """Remember the decoys and the inputs: call after writing the inputs."""
        self.before = snapshot(self.base, (self.out, self.home))

    def damage(self) -> str | None:
        """What changed outside target/out and home/, or None."""
        after = snapshot(self.base, (self.out, self.home))
        if after == self.before:
            return None
        changed = sorted(k for k in set(after) | set(self.before) if after.get(k) != self.before.get(k))
        return "write outside the target: " + ", ".join(changed[:5])


@contextlib.contextmanager
def sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox with its decoys, and the environment pointed into its home."""
    import pytest

    with tempfile.TemporaryDirectory(prefix="envctl-fuzz-") as tmp:
        base = Path(tmp)
        box = Sandbox(base)
        for d in (box.inputs, box.out, box.home / "state", box.home / "cache"):
            d.mkdir(parents=True)
        (base / "decoy-dir").mkdir()
        (base / "decoy-dir" / "precious.txt").write_text("keep me\n")
        (base / "decoy.txt").write_text("keep me too\n")
        os.symlink("decoy-dir", base / "decoy-link")
        with pytest.MonkeyPatch.context() as mp:
            for var, value in {
                "HOME": box.home,
                "XDG_CACHE_HOME": box.home / "cache",
                "XDG_STATE_HOME": box.home / "state",
                "ENVCTL_STATE_DIR": box.home / "state",
                "ENVCTL_CACHE": box.home / "cache" / "envctl",
            }.items():
                mp.setenv(var, str(value))
            mp.delenv("ENVCTL_MATRIX", raising=False)
            mp.chdir(box.out)
            yield box
        _restore_permissions(base)  # a fuzzed mode must not stop the cleanup


def _restore_permissions(base: Path) -> None:
    for dirpath, dirnames, _ in os.walk(base):
        for name in dirnames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.chmod(0o755)


# ------------------------------------------------------------------ running and judging
@dataclass(frozen=True)
class Outcome:
    kind: str  # accepted, refused, lost
    why: str = ""


def run_cli(args: list[str]) -> tuple[int | None, str, str, str | None]:
    """envctl's main() in-process: exit code, stdout, stderr, and the traceback of an exception
    that escaped it (None when none did)."""
    from envctl.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | None = 0
    escaped = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            code, escaped = None, traceback.format_exc(limit=-4)
    return code, out.getvalue(), err.getvalue(), escaped


def judge_cli(box: Sandbox, args: list[str], *, results: tuple[int, ...] = (0, 1)) -> Outcome:
    """Run ``args`` and say what kind of outcome it was (see the module docstring)."""
    code, _stdout, stderr, escaped = run_cli(args)
    return judge(box, code, stderr, escaped, results=results, command=" ".join(args[:2]))


def judge(
    box: Sandbox,
    code: int | None,
    stderr: str,
    escaped: str | None,
    *,
    results: tuple[int, ...] = (0, 1),
    command: str = "",
) -> Outcome:
    damage = box.damage()
    if escaped is not None:
        return Outcome("lost", f"{command}: traceback: {escaped.strip().splitlines()[-1]}")
    if damage:
        return Outcome("lost", f"{command}: {damage}")
    if "Traceback (most recent call last)" in stderr:
        return Outcome("lost", f"{command}: a traceback on stderr")
    if code == 2:
        lines = stderr.strip().splitlines()
        one_line = (
            1 <= len(lines) <= 2
            and lines[0].startswith("error: ")
            and (len(lines) == 1 or lines[1].startswith("hint: "))
            and all(len(line) <= 2100 for line in lines)
        )
        if not one_line:
            return Outcome("lost", f"{command}: exit 2 but not one line: {stderr[:200]!r}")
        return Outcome("refused", lines[0])
    if code in results:
        return Outcome("accepted", f"exit {code}")
    return Outcome("lost", f"{command}: exit {code}: {stderr[-200:]!r}")


def call(box: Sandbox, fn: Callable[[], object], refusals: tuple[type[BaseException], ...] = ()) -> Outcome:
    """Call a parser directly: a value is accepted, an EnvctlError (or one of ``refusals``) with a
    one-line message is refused, anything else is lost."""
    from envctl.errors import EnvctlError

    try:
        fn()
    except (EnvctlError, *refusals) as exc:
        damage = box.damage()
        if damage:
            return Outcome("lost", damage)
        message = str(exc)
        if "\n" in message or len(message) > 2100:
            return Outcome("lost", f"{type(exc).__name__} of {len(message)} chars / several lines")
        return Outcome("refused", message)
    except BaseException:
        return Outcome("lost", "traceback: " + traceback.format_exc(limit=-3).strip().splitlines()[-1])
    damage = box.damage()
    return Outcome("lost", damage) if damage else Outcome("accepted")


def check(category: str, outcome: Outcome, source: str = "fuzz") -> None:
    """Count the outcome, then fail the example if it was lost."""
    tally(category, outcome, source)
    assert outcome.kind != "lost", outcome.why


def python() -> str:
    return sys.executable
