"""``runlab sweep``: a grid of runs in Hydra's sweep syntax, in parallel."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from runlab.cli._format import (
    Format,
    fmt_value,
    write_csv,
    write_json,
    write_markdown,
    write_rows,
    write_table,
)
from runlab.errors import ConfigError
from runlab.sweep.launchers import LAUNCHERS
from runlab.sweep.plugins import PRUNERS, SAMPLERS
from runlab.tracking.roots import ROOT_HELP, START_ROOT_HELP

LAUNCHER = typer.Option(
    None,
    "--launcher",
    help=f"Where runs execute: {', '.join(LAUNCHERS.builtin())} or a plugin's name (default "
    "local; config: launcher.name).",
    show_default=False,
)
LAUNCHER_OPT = typer.Option(
    None,
    "--launcher-opt",
    help="A launcher option, repeatable: address=auto cpus_per_trial=2 (config: launcher:).",
    show_default=False,
)


def sweep(
    config: str | None = typer.Argument(
        None, help="Config file (omit with --resume).", show_default=False
    ),
    overrides: list[str] | None = typer.Argument(
        None,
        help="Sweeps in Hydra's grammar: a=1,2 model=mlp,resmlp b='range(1,4)'",
        show_default=False,
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Runs at a time."),
    launcher: str | None = LAUNCHER,
    name: str | None = typer.Option(None, "--name", help="Sweep name (default: config name)."),
    objective: str = typer.Option("val.loss", "--objective", help="Metric to sort by."),
    direction: str = typer.Option("minimize", "--direction", help="minimize or maximize."),
    launcher_opt: list[str] | None = LAUNCHER_OPT,
    output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help=START_ROOT_HELP),
    resume: str | None = typer.Option(
        None, "--resume", help="Run the unfinished combinations of SWEEP."
    ),
    pack: int = typer.Option(
        1, "--pack", help="On a scheduler: runs per array task, one after the other."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="On a scheduler: print the job script, submit nothing."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Run every combination of the sweep overrides; print them sorted by the objective. On a
    scheduler (--launcher slurm|htcondor) submit them and return: follow with runlab jobs."""
    from runlab.config import config_runs_root
    from runlab.sweep.runner import results_table, run_grid
    from runlab.tracking.roots import runs_root

    if resume and (config or overrides):
        raise ConfigError("with --resume, give no config or overrides: the sweep has them")
    root = runs_root(
        output_dir if output_dir is not None else config_runs_root(config, list(overrides or []))
    )
    record = run_grid(
        config,
        list(overrides or []),
        root,
        jobs,
        launcher,
        name,
        objective,
        direction,
        resume,
        launcher_opt,
        pack,
        dry_run,
    )
    if record is None:  # --dry-run
        return
    if "job_ids" in record.data:  # submitted to a scheduler
        _print_submitted(record, fmt)
        return
    rows = results_table(record, root)
    _print_sweep(record, rows, fmt)
    failed = [f"#{r['index']} {r['run_id'] or ''}".strip() for r in rows if r["status"] in FAILED]
    _fail_if_any("runs", failed, len(rows), record.logs)


FAILED = ("failed", "crashed")


def _print_submitted(record: Any, fmt: Format) -> None:
    """What a scheduler took: the sweep id, how many runs and the job ids."""
    count, ids = record.data["submitted"], record.data["job_ids"]
    scheduler = record.data["launcher"]
    if fmt is Format.json:
        write_json(
            {"sweep_id": record.id, "path": str(record.path), "scheduler": scheduler,
             "submitted": count, "job_ids": ids}
        )  # fmt: skip
        return
    what = f"job {', '.join(ids)}" if ids else "nothing (every run finished or is queued)"
    typer.echo(
        f"sweep {record.id}: submitted {count} runs to {scheduler} as {what}\n"
        f"follow it: runlab jobs {record.id} --wait"
    )


def _print_sweep(record: Any, rows: list[dict[str, Any]], fmt: Format) -> None:
    columns = list(rows[0]) if rows else ["index", "run_id", "status"]
    payload = {"sweep_id": record.id, "path": str(record.path), "runs": rows}
    if not write_rows(fmt, columns, rows, payload, "status"):
        return
    finished = sum(1 for r in rows if r["status"] == "finished")
    typer.echo(f"sweep {record.id}: {finished}/{len(rows)} finished ({record.path})")


def _fail_if_any(what: str, failed: list[str], total: int, logs: Path) -> None:
    """Exit 1 when a run or trial failed: a sweep whose every run failed must not look like a
    success to a script or a CI job. (A gate stop or a pruned trial is not a failure.)"""
    if failed:
        sys.stderr.write(
            f"runlab: {len(failed)} of {total} {what} failed ({'; '.join(failed[:3])}"
            f"{' ...' if len(failed) > 3 else ''}); their output is in {logs}\n"
        )
        raise typer.Exit(1)


def tune(
    config: str = typer.Argument(..., help="Config file (YAML or JSON)."),
    overrides: list[str] | None = typer.Argument(
        None,
        help="Overrides and search space: optim.lr='tag(log, interval(1e-5, 1e-2))' "
        "trainer.batch_size='choice(64,128)' model.blocks='range(2,6)'",
        show_default=False,
    ),
    trials: int = typer.Option(20, "--trials", "-n", help="Trials to run (this invocation)."),
    timeout: str | None = typer.Option(None, "--timeout", help="Stop asking after 30m, 2h, ..."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Trials at a time."),
    sampler: str = typer.Option(
        "tpe", "--sampler", help=f"{', '.join(SAMPLERS.builtin())}, or pkg.mod:factory."
    ),
    pruner: str = typer.Option(
        "median", "--pruner", help=f"{', '.join(PRUNERS.builtin())}, or pkg.mod:factory."
    ),
    objective: list[str] | None = typer.Option(
        None, "--objective", help="Metric(s), repeatable (default val.loss)."
    ),
    direction: list[str] | None = typer.Option(
        None, "--direction", help="minimize or maximize, one per objective."
    ),
    study_name: str | None = typer.Option(
        None, "--study-name", help="Study name; the same name resumes it."
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL (default: SQLite under the runs root)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Sampler seed."),
    launcher: str | None = LAUNCHER,
    in_process: bool = typer.Option(
        False,
        "--in-process",
        help="Trials in this process: faster, but GPU memory is not released between them.",
    ),
    launcher_opt: list[str] | None = LAUNCHER_OPT,
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="On a scheduler: worker jobs, each running its share of --trials (default --jobs).",
        show_default=False,
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="On a scheduler: print the job script, submit nothing."
    ),
    output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help=START_ROOT_HELP),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Tune with Optuna: every trial a run, pruned by the study's pruner, results in
    <root>/studies/<name>/ (trials.jsonl, best_params.yaml, best_config.yaml). On a scheduler
    (--launcher slurm|htcondor) submit --workers jobs and return: follow with runlab jobs."""
    from runlab.config import config_runs_root
    from runlab.sweep.study import run_study
    from runlab.tracking.roots import runs_root

    root = runs_root(
        output_dir if output_dir is not None else config_runs_root(config, list(overrides or []))
    )
    summary = run_study(
        config,
        list(overrides or []),
        root,
        trials,
        timeout,
        jobs,
        sampler,
        pruner,
        objective,
        direction,
        study_name,
        storage,
        seed,
        launcher,
        in_process,
        launcher_opt,
        {"workers": workers, "dry_run": dry_run} if workers is not None or dry_run else None,
    )
    if summary.get("dry_run"):
        return
    if "job_ids" in summary:
        _print_workers(summary, fmt)
        return
    _print_study(summary, fmt)
    failed = [
        f"#{t['number']} {t['fail_reason'] or ''}".strip()
        for t in summary["trials"]
        if t["number"] in summary["asked"] and t["state"] == "FAIL"
    ]
    _fail_if_any("trials", failed, len(summary["asked"]), Path(summary["folder"]) / "logs")


def _print_workers(summary: dict[str, Any], fmt: Format) -> None:
    if fmt is Format.json:
        write_json(summary)
        return
    typer.echo(
        f"study {summary['study']}: submitted {summary['workers']} workers "
        f"({summary['trials_per_worker']} trials each) to {summary['scheduler']} as job "
        f"{', '.join(summary['job_ids'])}; storage {summary['storage']}\n"
        f"follow it: runlab jobs {summary['study']} --wait"
    )


def _print_study(summary: dict[str, Any], fmt: Format) -> None:
    if fmt is Format.json:
        write_json(summary)
        return
    objectives = summary["objectives"]
    columns = ["number", "state", *objectives, "params", "run_id"]
    rows = [
        [
            t["number"],
            t["state"],
            *(t["values"] or [None] * len(objectives)),
            t["params"],
            t["run_id"],
        ]
        for t in summary["trials"]
    ]
    if any(t.get("fail_reason") for t in summary["trials"]):  # why each failed trial failed
        columns.append("reason")
        for row, t in zip(rows, summary["trials"], strict=True):
            row.append(_short(t.get("fail_reason")))
    text = [[fmt_value(v) for v in row] for row in rows]
    if fmt is Format.csv:
        write_csv(columns, rows)
    elif fmt is Format.md:
        write_markdown(columns, text)
    else:
        write_table(columns, text)
        label = "Pareto front" if len(objectives) > 1 else "best"
        best = ", ".join(f"#{b['number']} {b['values']}" for b in summary["best"]) or "none yet"
        typer.echo(f"{label}: {best}; files in {summary['folder']}")


def _short(text: str | None, width: int = 60) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= width else line[: width - 3] + "..."


def importance(
    study: str = typer.Argument(..., help="Study name (runlab tune --study-name)."),
    evaluator: str = typer.Option(
        "fanova", "--evaluator", help="fanova, ped-anova or mdi (Optuna's evaluators)."
    ),
    objective: str | None = typer.Option(
        None, "--objective", help="Which objective of a multi-objective study (default: first)."
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL (default: where runlab tune put it)."
    ),
    seed: int = typer.Option(0, "--seed", help="The evaluator's seed (fanova, mdi)."),
    output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help=ROOT_HELP),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Each hyperparameter's importance for a study's objective, from its finished trials
    (Optuna's fANOVA by default), largest first."""
    from runlab.sweep.importance import importances
    from runlab.tracking.roots import runs_root

    found = importances(
        runs_root(output_dir, must_exist=True), study, storage, evaluator, objective, seed
    )
    rows = [{"param": k, "importance": v} for k, v in found["importances"].items()]
    if not write_rows(fmt, ["param", "importance"], rows, found, "param"):
        return
    typer.echo(
        f"study {study}: {found['evaluator']} over {found['trials']} finished trials, "
        f"objective {found['objective']}"
    )


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
    app.command("tune")(tune)
    app.command("importance")(importance)
