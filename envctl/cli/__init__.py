"""The `envctl` command line. Only this package prints; everything below it returns values.

Subcommands are imported lazily (``LazyGroup``) so that ``envctl --help`` and light commands do not
pay for docker, paramiko, conda-lock or rattler imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import click

from envctl import __version__
from envctl.errors import EnvctlError

#: command name -> "module:attribute" of its click command. Add one line per command.
COMMANDS: dict[str, str] = {
    "init": "envctl.cli.init:init",
    "solve": "envctl.cli.solve:solve",
    "explain": "envctl.cli.solve:explain",
    "matrix": "envctl.cli.matrix:matrix",
    "lock": "envctl.cli.lock:lock",
    "export": "envctl.cli.export:export",
    "sandbox": "envctl.cli.sandbox:sandbox",
    "inventory": "envctl.cli.inventory:inventory",
    "exec": "envctl.cli.exec:exec_",
    "demo": "envctl.cli.demo:demo",
    "build": "envctl.cli.build:build",
    "pack": "envctl.cli.pack:pack",
    "render": "envctl.cli.build:render",
    "smoke": "envctl.cli.smoke:smoke",
    "base": "envctl.cli.base:base",
    "push": "envctl.cli.push:push",
    "status": "envctl.cli.status:status",
    "rollback": "envctl.cli.rollback:rollback",
    "history": "envctl.cli.history:history",
    "gc": "envctl.cli.gc:gc",
    "doctor": "envctl.cli.doctor:doctor",
    "bootstrap": "envctl.cli.bootstrap:bootstrap",
}


#: ``ctx.meta`` keys (shared by every context of one run) the common options set
QUIET, VERBOSE, DEBUG = "envctl.quiet", "envctl.verbose", "envctl.debug"


def _set_flag(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    key = {"quiet": QUIET, "verbose": VERBOSE, "debug": DEBUG}[str(param.name)]
    if key == VERBOSE:
        ctx.meta[key] = ctx.meta.get(key, 0) + int(value or 0)
    elif value:
        ctx.meta[key] = True


def common_options() -> list[click.Option]:
    """``-q``, ``-v`` and ``--debug``: taken by the top-level group and by every command."""
    return [
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_set_flag,
            help="No progress output.",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_set_flag,
            help="More progress detail (repeatable); shows progress with --json too.",
        ),
        click.Option(
            ["--debug"],
            is_flag=True,
            expose_value=False,
            callback=_set_flag,
            help="Show tracebacks for envctl's own errors.",
        ),
    ]


def verbosity() -> int:
    """-1 with ``-q``, else the number of ``-v`` given (before or after the subcommand)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return 0
    return -1 if ctx.meta.get(QUIET) else int(ctx.meta.get(VERBOSE, 0))


def _with_common_options(command: click.Command) -> click.Command:
    """Add the common options to ``command`` (and to a group's registered subcommands), once."""
    if not getattr(command, "_envctl_common", False):
        names = {opt for p in command.params for opt in getattr(p, "opts", ())}
        command.params.extend(o for o in common_options() if not set(o.opts) & names)
        command._envctl_common = True  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_common_options(sub)
    return command


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they are run (or listed in --help).

    Every command it hands out takes the common options (``-q``, ``-v``, ``--debug``).
    """

    lazy: ClassVar[dict[str, str]] = COMMANDS

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return _with_common_options(self.commands[cmd_name])
        target = self.lazy.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return _with_common_options(command)


class EnvctlGroup(LazyGroup):
    """The top-level group. Running it by any road (console script, ``python -m envctl``, click's
    test runner) goes through :func:`main`, the one exit path."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, *_: Any, **__: Any
    ) -> None:
        main(None if args is None else list(args))


@click.group(cls=EnvctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="envctl")
def cli() -> None:
    """Solve, lock, build and deliver consistent ML environments to GPU clusters.

    -q, -v and --debug work before or after the subcommand.
    """


cli.params.extend(common_options())


def main(argv: list[str] | None = None) -> None:
    """Run envctl; return when it succeeded, else ``sys.exit`` with the one rule's code.

    0 the request was met; 1 it cannot be met or a remote source failed (an error of exit code 1,
    or a printed result that is not ok); 2 bad input, usage errors included; 130 interrupted.
    With ``--json`` on the command line (before any ``--``) every outcome is one JSON document
    on stdout, errors included. Unknown exceptions go through with their traceback.
    """
    args = sys.argv[1:] if argv is None else argv
    ours = args[: args.index("--")] if "--" in args else args  # after `--`: a remote command's
    as_json, debug = "--json" in ours, "--debug" in ours
    code = _run(args, as_json, debug)
    if code:
        sys.exit(code)


def _run(args: list[str], as_json: bool, debug: bool) -> int:
    from envctl.cli import output

    try:
        rv = click.Group.main(cli, args=args, prog_name="envctl", standalone_mode=False)
    except output.NotOk:
        return output.NotOk.exit_code
    except EnvctlError as exc:
        if debug:
            raise
        output.report_error(exc, as_json)
        return exc.exit_code
    except (click.ClickException, click.exceptions.Abort) as exc:
        return output.report_click_error(exc, as_json)
    return rv if isinstance(rv, int) else 0  # click returns --help's and --version's 0
