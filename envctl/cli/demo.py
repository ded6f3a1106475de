"""`envctl demo`: the whole story on fresh local sandbox nodes, one visible command at a time.

sandbox up (3 fresh nodes) -> bootstrap -> doctor -> solve from the nodes' facts -> lock -> base
image -> build -> push (preflight, then verify: every package imported on every node) -> status
-> a command on every node inside the environment -> history -> sandbox down. Each step is the
real `envctl` command, printed before it runs, so the demo doubles as a walkthrough; with
``--json`` each step runs with ``--json`` too and the summary holds every step's document. The
demo keeps its own state (ledger, facts cache) under ``--dir``, so its history is its own. Needs
root (network namespaces).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from envctl.cli.output import console, render, styled
from envctl.errors import InputError


class _StepFailed(Exception):
    """A step exited non-zero: the demo stops there (and still takes its sandbox down)."""

    def __init__(self, title: str, exit_code: int) -> None:
        super().__init__(title)
        self.title, self.exit_code = title, exit_code


class _Steps:
    """Runs the steps; people see each command and its output, --json gets one summary document."""

    def __init__(self, as_json: bool, state: Path) -> None:
        self.as_json = as_json
        self.env = dict(os.environ, ENVCTL_STATE_DIR=str(state))
        self.done: list[dict[str, object]] = []

    def __call__(self, title: str, *args: str) -> Any:
        """Run ``envctl ARGS``; with --json, its document (the step's ``result``)."""
        if self.as_json:  # before any `--`: after it, words belong to a remote command
            cut = args.index("--") if "--" in args else len(args)
            args = (*args[:cut], "--json", *args[cut:])
        argv = [sys.executable, "-m", "envctl", *args]
        if not self.as_json:
            if console().is_terminal:
                console().rule(styled((title, "bold")))
            else:  # a rule spans the width, and output that is not a terminal has no width
                console().print(f"== {title} ==")
            console().print(f"$ envctl {shlex.join(args)}")
        start = time.monotonic()
        result = subprocess.run(argv, check=False, capture_output=self.as_json, text=True, env=self.env)
        seconds = round(time.monotonic() - start, 2)
        step: dict[str, object] = {
            "step": title,
            "command": ["envctl", *args],
            "exit_code": result.returncode,
            "seconds": seconds,
        }
        document = None
        if self.as_json:
            try:
                document = json.loads(result.stdout)
            except ValueError:
                document = None
            step["result"] = document
            step["output"] = (result.stderr or "")[-2000:]
        else:
            console().print(styled((f"({seconds:.1f} s)", "dim")))
        self.done.append(step)
        if result.returncode != 0:
            raise _StepFailed(title, result.returncode)
        return document


@click.command()
@click.option(
    "--profile",
    type=click.Path(path_type=Path),
    default=None,
    help="Default: the demo-cpu.toml profile envctl ships.",
)
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path),
    default=Path("/var/tmp/envctl-demo"),
    show_default=True,
)
@click.option("--nodes", type=click.IntRange(1, 16), default=3, show_default=True)
@click.option("--keep", is_flag=True, help="Leave the sandbox cluster running afterwards.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary of every step instead.")
def demo(profile: Path | None, workdir: Path, nodes: int, keep: bool, as_json: bool) -> None:
    """Bootstrap fresh sandbox nodes, read their facts, solve and lock PROFILE for them, build,
    push with preflight and verify, then show status and history."""
    if profile is None:
        from envctl.adapters.package_data import data_dir

        profile = (data_dir("profiles") or Path("profiles")) / "demo-cpu.toml"
    if not profile.is_file():
        raise InputError(f"{profile}: no such profile", hint="pass --profile PATH")
    workdir.mkdir(parents=True, exist_ok=True)
    steps = _Steps(as_json, workdir / "state")
    failed: _StepFailed | None = None
    start = time.monotonic()
    try:
        _demo(steps, profile, workdir, nodes, keep)
    except _StepFailed as exc:
        failed = exc
    seconds = round(time.monotonic() - start, 1)

    def show() -> None:
        if failed is not None:  # the step's own output is above
            console(err=True).print(
                f"demo step '{failed.title}' failed (exit {failed.exit_code}): its output above says why"
            )
        else:
            console().print(f"demo done in {seconds:.0f} s")

    document = {
        "schema": "envctl.demo/1",
        "steps": steps.done,
        "failed_step": failed and failed.title,
        "seconds": seconds,
    }
    render(document, ok=failed is None, as_json=as_json, show=show)


def _demo(_step: _Steps, profile: Path, workdir: Path, nodes: int, keep: bool) -> None:
    lock, image, sandbox = workdir / "conda-lock.yml", workdir / "image", workdir / "sandbox"
    inventory = str(sandbox / "inventory.toml")
    _step("clear an earlier sandbox", "sandbox", "down", "--dir", str(sandbox))
    _step(
        "sandbox cluster (fresh nodes)",
        "sandbox",
        "up",
        "--nodes",
        str(nodes),
        "--runtime",
        "prefix",
        "--dir",
        str(sandbox),
    )
    try:
        _step("bootstrap the nodes", "bootstrap", "-i", inventory)
        _step("doctor", "doctor", "-i", inventory, "--refresh")
        _step("solve from the nodes' facts", "solve", str(profile), "-i", inventory)
        _step("lock", "lock", str(profile), "-i", inventory, "-o", str(lock), "--platform", "linux-64")
        _step("base image (debootstrap, cached)", "base", "build", "debian-bookworm-python")
        _step("build", "build", str(lock), "-o", str(image))
        _step("push (preflight, verify)", "push", str(image), "-i", inventory, "--env", "demo", "--verify")
        _step("status", "status", "-i", inventory, "demo")
        # chroot into the unpacked image: its venv's python is the base image's /usr/bin/python3.11.
        # (No /dev in there, so nothing that compiles a JAX kernel: importing is the check.)
        code = (
            "import jax, numpy as np; d = jax.devices()[0];"
            " print('jax', jax.__version__, 'on', d.platform, '| numpy', np.__version__, int(np.arange(10).sum()))"
        )
        _step(
            "run on every node",
            "exec",
            "-i",
            inventory,
            "--",
            "chroot",
            "/opt/envctl/envs/demo",
            "/opt/envctl/envs/demo/bin/python",
            "-c",
            code,
        )
        _step("history", "history")
    finally:
        if not keep:
            _step("sandbox down", "sandbox", "down", "--dir", str(sandbox))
