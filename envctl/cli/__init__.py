"""The `envctl` command line. Only this package prints; everything below it returns values.

Subcommands are imported lazily (``LazyGroup``) so that ``envctl --help`` and light commands do not
pay for docker, paramiko, conda-lock or rattler imports.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, ClassVar

import click

from envctl import __version__
from envctl.errors import EnvctlError

#: command name -> "module:attribute" of its click command. Add one line per command.
COMMANDS: dict[str, str] = {
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
    "render": "envctl.cli.build:render",
    "smoke": "envctl.cli.smoke:smoke",
    "base": "envctl.cli.base:base",
    "push": "envctl.cli.push:push",
    "status": "envctl.cli.status:status",
    "rollback": "envctl.cli.rollback:rollback",
    "history": "envctl.cli.history:history",
    "gc": "envctl.cli.gc:gc",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they are run (or listed in --help)."""

    lazy: ClassVar[dict[str, str]] = COMMANDS

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = self.lazy.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="envctl")
@click.option("--debug", is_flag=True, help="Show tracebacks for envctl's own errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Solve, lock, build and deliver consistent ML environments to GPU clusters."""
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: one handler turns EnvctlError into a message, hint and exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        return cli.main(args=args, prog_name="envctl", standalone_mode=False)
    except EnvctlError as exc:
        if debug:
            raise
        from envctl.cli.output import print_error

        print_error(exc)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)  # usage errors are bad input
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
