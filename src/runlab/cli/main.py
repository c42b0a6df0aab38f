"""Entry point: ``runlab`` and ``python -m runlab``.

Commands are thin: parse, call the library, print. A :class:`runlab.errors.RunlabError` becomes
one line on stderr and its exit code (2 for usage and config errors); ``--debug`` anywhere on
the command line shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import typer

from runlab._version import __version__
from runlab.cli import (
    annotate,
    finance,
    flow,
    jobs,
    monitor,
    package,
    queue,
    report,
    reproduce,
    rl,
    runs,
    sinks,
    sweep,
    train,
    ui,
)
from runlab.errors import RunlabError

app = typer.Typer(
    name="runlab",
    help="Run, record, tune and watch training experiments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
train.register(app)
runs.register(app)
reproduce.register(app)
annotate.register(app)
queue.register(app)
rl.register(app)
finance.register(app)
package.register(app)
flow.register(app)
sweep.register(app)
jobs.register(app)
monitor.register(app)
report.register(app)
sinks.register(app)
ui.register(app)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"runlab {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks for errors (also RUNLAB_DEBUG=1)."
    ),
) -> None:
    """runlab: run, record, tune and watch training experiments."""


def usage_line(err: Any) -> str:
    """A usage error (unknown option, missing argument, bad value) as one line, like every
    other error: what is wrong, the command's usage, and where the help is."""
    message = " ".join(err.format_message().split())
    ctx = getattr(err, "ctx", None)
    if ctx is None:
        return f"runlab: error: {message}"
    usage = " ".join(ctx.get_usage().split()).removeprefix("Usage: ")
    return f"runlab: error: {message} (usage: {usage}; `{ctx.command_path} -h` for help)"


def _is_usage_error(err: BaseException) -> bool:
    """Click's ClickException, whichever copy of Click raised it (Typer >= 0.28 vendors one)."""
    names = {c.__name__ for c in type(err).__mro__}
    return "ClickException" in names and callable(getattr(err, "format_message", None))


def working_directory_importable() -> None:
    """Modules in the working directory import by name, as under ``python -m`` (models, data
    functions, loops, rewards named ``mymodels.Net``), without ``PYTHONPATH=.``. The directory
    goes last on ``sys.path``: an installed package of the same name still wins."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    working_directory_importable()
    debug = "--debug" in args or os.environ.get("RUNLAB_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    if not args or "--help" in args or "-h" in args:
        from runlab.cli._help import load_typer_help

        load_typer_help()
    try:
        code = app(args=args, prog_name="runlab", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)  # typer.Exit(n) from a command
    except RunlabError as err:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"runlab: error: {err}\n")
        sys.exit(err.exit_code)
    except BrokenPipeError:  # `runlab ls | head`
        sys.stderr.close()
        sys.exit(0)
    except Exception as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # `runlab` alone: the help
            err.show()  # type: ignore[attr-defined]
            sys.exit(2)
        if _is_usage_error(err):
            if debug:
                traceback.print_exc()
            sys.stderr.write(usage_line(err) + "\n")
            sys.exit(getattr(err, "exit_code", 2))
        if type(err).__name__ == "Abort":
            sys.stderr.write("runlab: aborted\n")
            sys.exit(1)
        raise
