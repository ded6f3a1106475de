"""The fuzz figures: after a run that fuzzed anything, one table per category of inputs tried,
refused cleanly (exit 2, one line), accepted (a result) and lost (a traceback, several lines, a
write outside the target). ENVCTL_FUZZ_REPORT=FILE also writes them as JSON."""

from __future__ import annotations

import json
import os
from typing import Any

from .harness import LOSSES, TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLY:
        return
    rows = []
    for category in sorted(TALLY):
        for source, counts in sorted(TALLY[category].items()):
            tried = sum(counts.values())
            rows.append((category, source, tried, counts["refused"], counts["accepted"], counts["lost"]))
    tr = terminalreporter
    tr.section("fuzz figures")
    header = ("category", "source", "tried", "refused", "accepted", "lost")
    tr.write_line(f"{header[0]:<18} {header[1]:<7} " + " ".join(f"{h:>8}" for h in header[2:]))
    for category, source, *numbers in rows:
        tr.write_line(f"{category:<18} {source:<7} " + " ".join(f"{n:>8}" for n in numbers))
    for category, losses in sorted(LOSSES.items()):
        for why in losses:
            tr.write_line(f"lost in {category}: {why}")
    if path := os.environ.get("ENVCTL_FUZZ_REPORT"):
        keys = ("category", "source", "tried", "refused", "accepted", "lost")
        with open(path, "w") as fh:
            json.dump([dict(zip(keys, row, strict=True)) for row in rows], fh, indent=1)
