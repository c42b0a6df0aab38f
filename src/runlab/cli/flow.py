"""``runlab flow FLOW.yaml``: run a flow's steps, cached ones skipped; ``runlab flow status
FLOW.yaml [--explain]``: which are cached and, for the others, what changed."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from runlab.errors import ConfigError
from runlab.tracking.roots import START_ROOT_HELP


def flow(
    target: str = typer.Argument(..., help="FLOW.yaml, or `status` then FLOW.yaml."),
    flow_file: Path | None = typer.Argument(None, hidden=True),
    force: list[str] | None = typer.Option(
        None, "--force", help="Run STEP even if cached (repeatable).", show_default=False
    ),
    start: str | None = typer.Option(
        None, "--from", help="Run STEP and every step after it, cached or not."
    ),
    explain: bool = typer.Option(False, "--explain", help="With status: why not cached."),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", help="Steps at a time (default: the cores).", show_default=False
    ),
    root: Path | None = typer.Option(None, "--root", "-r", help=START_ROOT_HELP),
) -> None:
    """Run a flow: its steps (cmd, run, gate, package) in dependency order, each skipped when
    its key (kind, fields, inputs' content, code, resolved config, upstream keys) is cached."""
    from runlab.flow.engine import Flows, run_flow
    from runlab.flow.spec import load_flow
    from runlab.tracking.roots import runs_root

    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs {jobs}: give 1 or more")
    status = target == "status"
    path = flow_file if status else Path(target)
    if path is None:
        raise ConfigError("runlab flow status FLOW.yaml: give the flow file")
    if flow_file is not None and not status:
        raise ConfigError(f"unexpected argument {flow_file}: runlab flow FLOW.yaml [--force S]")
    spec = load_flow(path)
    for name in [*(force or []), *([start] if start else [])]:
        if name not in spec.steps:
            raise ConfigError(
                f"--force/--from {name!r}: the flow's steps are {', '.join(spec.steps)}"
            )
    flows = Flows(spec, runs_root(root))
    if status:
        for name, why in flows.explain():
            shown = why if explain or why == "cached" else why.split(":")[0]
            sys.stdout.write(f"{name:<16} {shown}\n")
        return
    say = _Say()
    run_flow(flows, set(force or []), start, say=say, jobs=jobs)
    sys.stdout.write(f"{spec.name}: {len(spec.steps)} steps done\n")


class _Say:
    """One line per step to stderr, whole lines from any thread."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self.lock:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()


def register(app: typer.Typer) -> None:
    app.command("flow")(flow)
