"""`envctl demo`: the whole pipeline on a local sandbox cluster, one visible command at a time.

solve -> lock -> base image -> build -> sandbox up (3 nodes) -> push -> status -> a command on
every node that imports the environment -> sandbox down. Each step is the real `envctl` command,
printed before it runs, so the demo doubles as a walkthrough. Needs root (network namespaces).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

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

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.done: list[dict[str, object]] = []

    def __call__(self, title: str, *args: str) -> None:
        argv = [sys.executable, "-m", "envctl", *args]
        if not self.as_json:
            if console().is_terminal:
                console().rule(styled((title, "bold")))
            else:  # a rule spans the width, and output that is not a terminal has no width
                console().print(f"== {title} ==")
            console().print(f"$ envctl {shlex.join(args)}")
        start = time.monotonic()
        result = subprocess.run(argv, check=False, capture_output=self.as_json, text=True)
        seconds = round(time.monotonic() - start, 2)
        step: dict[str, object] = {
            "step": title,
            "command": ["envctl", *args],
            "exit_code": result.returncode,
            "seconds": seconds,
        }
        if self.as_json:
            step["output"] = ((result.stdout or "") + (result.stderr or ""))[-2000:]
        else:
            console().print(styled((f"({seconds:.1f} s)", "dim")))
        self.done.append(step)
        if result.returncode != 0:
            raise _StepFailed(title, result.returncode)


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
    """Solve, lock, build and push PROFILE to a local sandbox cluster, then run it on every node."""
    if profile is None:
        from envctl.adapters.package_data import data_dir

        profile = (data_dir("profiles") or Path("profiles")) / "demo-cpu.toml"
    if not profile.is_file():
        raise InputError(f"{profile}: no such profile", hint="pass --profile PATH")
    steps = _Steps(as_json)
    failed: _StepFailed | None = None
    try:
        _demo(steps, profile, workdir, nodes, keep)
    except _StepFailed as exc:
        failed = exc

    def show() -> None:
        if failed is not None:  # the step's own output is above
            console(err=True).print(
                f"demo step '{failed.title}' failed (exit {failed.exit_code}): its output above says why"
            )

    document = {"schema": "envctl.demo/1", "steps": steps.done, "failed_step": failed and failed.title}
    render(document, ok=failed is None, as_json=as_json, show=show)


def _demo(_step: _Steps, profile: Path, workdir: Path, nodes: int, keep: bool) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    lock, image, sandbox = workdir / "conda-lock.yml", workdir / "image", workdir / "sandbox"
    inventory = sandbox / "inventory.toml"
    _step("solve", "solve", str(profile))
    _step("lock", "lock", str(profile), "-o", str(lock), "--platform", "linux-64")
    _step("base image (debootstrap, cached)", "base", "build", "debian-bookworm-python")
    _step("build", "build", str(lock), "-o", str(image))
    _step("clear an earlier sandbox", "sandbox", "down", "--dir", str(sandbox))
    _step(
        "sandbox cluster",
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
        _step("push", "push", str(image), "-i", str(inventory), "--env", "demo")
        _step("status", "status", "-i", str(inventory), "demo")
        # from the node's host, no chroot: the env's own Python through the image's own loader
        # (docs/nodes.md, "Host-runnable environments"). Importing is the check: no GPU here.
        code = (
            "import jax, numpy as np; d = jax.devices()[0];"
            " print('jax', jax.__version__, 'on', d.platform, '| numpy', np.__version__, int(np.arange(10).sum()))"
        )
        _step(
            "run on every node",
            "exec",
            "-i",
            str(inventory),
            "--",
            "/opt/envctl/envs/demo/bin/python",
            "-c",
            code,
        )
        _step("history", "history")
    finally:
        if not keep:
            _step("sandbox down", "sandbox", "down", "--dir", str(sandbox))
