"""``runlab worker ROOT``: run the launches queued from the dashboard."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from runlab.errors import ConfigError
from runlab.tracking.roots import ROOT_HELP


def worker(
    root: Path | None = typer.Argument(None, help=ROOT_HELP, show_default=False),
    slots: int = typer.Option(1, "--slots", "-s", help="Launches at a time."),
    gpus: str | None = typer.Option(
        None, "--gpus", help="GPUs to hand out, one per launch: 0,1 (CUDA_VISIBLE_DEVICES)."
    ),
    lease: float = typer.Option(
        60.0, "--lease", help="Seconds a launch stays this worker's without a renewal."
    ),
    once: bool = typer.Option(False, "--once", help="Stop when the queue is empty."),
    submit: str | None = typer.Option(
        None,
        "--submit",
        help="Submit --workers worker jobs to slurm or htcondor instead (each runs the queue "
        "with --once on a compute node) and return.",
        show_default=False,
    ),
    workers: int = typer.Option(1, "--workers", help="With --submit: worker jobs."),
    launcher_opt: list[str] | None = typer.Option(
        None,
        "--launcher-opt",
        help="With --submit: a scheduler option, key=value.",
        show_default=False,
    ),
) -> None:
    """Claim the queue's launches (runlab ui --recipes) and run them; a killed worker's
    launches go back to the queue when their lease expires."""
    from runlab.queue.worker import Worker
    from runlab.tracking.roots import runs_root

    if slots < 1:
        raise ConfigError(f"--slots {slots}: give 1 or more")
    if lease < 2:
        raise ConfigError(f"--lease {lease}: give 2 seconds or more")
    given = [g.strip() for g in (gpus or "").split(",") if g.strip()]
    if gpus is not None and (not given or not all(g.isdigit() for g in given)):
        raise ConfigError(f"--gpus {gpus!r}: GPU numbers separated by commas, e.g. 0,1")
    if given and len(given) < slots:
        raise ConfigError(f"--gpus {gpus}: {len(given)} GPUs for {slots} slots")
    base = runs_root(root)
    base.mkdir(parents=True, exist_ok=True)
    if submit is not None:
        from runlab.queue.submit import submit_workers
        from runlab.sweep.launchers import launcher_choice

        name, options = launcher_choice(submit, launcher_opt)
        ids = submit_workers(base, name, options, workers, slots, lease)
        sys.stdout.write(
            f"submitted {workers} worker job(s) to {name} as {', '.join(ids)}: each runs the "
            f"queue of {base.resolve()} until it is empty\n"
        )
        return

    def say(line: str) -> None:
        sys.stderr.write(f"runlab worker: {line}\n")
        sys.stderr.flush()

    say(f"{base.resolve()}: {slots} slot(s){', GPUs ' + ','.join(given) if given else ''}")
    Worker(base, slots, given, lease, poll=min(1.0, lease / 4)).run(once=once, say=say)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
