"""``runlab run`` and ``runlab check``: train from a config, or preflight it in seconds."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from runlab.errors import ConfigError
from runlab.sinks.builtin import SINK_NAMES
from runlab.tracking.roots import START_ROOT_HELP

EXIT_FOR_STATUS = {"finished": 0, "stopped": 0, "pruned": 0, "failed": 1, "preempted": 143}


class TextOrJson(str, Enum):
    text = "text"
    json = "json"


def _split_args(
    config: str | None, overrides: list[str] | None, resume: str | None
) -> tuple[str | None, list[str]]:
    rest = list(overrides or [])
    if resume and config and "=" in config:  # `runlab run --resume RUN trainer.epochs=20`
        return None, [config, *rest]
    if config is None and not resume:
        raise ConfigError("missing CONFIG: runlab run CONFIG [key=value ...] (or --resume RUN)")
    return config, rest


def _compose(config: str | None, overrides: list[str], resume_dir: Path | None) -> dict[str, Any]:
    from runlab.train.checks import load_checked

    if resume_dir is not None:
        return load_checked(resume_dir / "config.yaml", overrides)
    assert config is not None
    return load_checked(config, overrides)


def _apply_flags(
    cfg: dict[str, Any], keep_checkpoints: bool, sink: list[str] | None, tag: list[str] | None
) -> None:
    """--keep-checkpoints, --sink and --tag onto the config."""
    if keep_checkpoints:
        cfg["checkpoint"]["keep"] = True
    if sink:
        from runlab.sinks.base import check_sink_names

        cfg["sinks"] = [*cfg["sinks"], *(s for s in sink if s not in cfg["sinks"])]
        check_sink_names(cfg["sinks"], "--sink")
    if tag:
        cfg["tags"] = {**cfg["tags"], **parse_tags(tag)}


def parse_tags(pairs: list[str]) -> dict[str, Any]:
    """``["pair=AAPL_AMZN", "n=3"]`` -> ``{"pair": "AAPL_AMZN", "n": 3}`` (values read as YAML
    scalars: numbers and booleans stay numbers and booleans)."""
    import yaml

    tags: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip() or not key.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"--tag {pair!r}: write key=value (a key of letters, digits, _, -)")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            value = text
        tags[key.strip()] = value if isinstance(value, (str, int, float, bool)) else text
    return tags


def _seed(cli_seed: int | None, cfg: dict[str, Any]) -> int:
    if cli_seed is not None:
        return cli_seed
    seed = cfg.get("seed", 42)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    return seed


def run(
    config: str | None = typer.Argument(
        None, help="Config file (YAML or JSON).", show_default=False
    ),
    overrides: list[str] | None = typer.Argument(
        None, help="Overrides: trainer.epochs=20 model=resmlp +new.key=1 ~key", show_default=False
    ),
    output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help=START_ROOT_HELP),
    run_name: str | None = typer.Option(
        None, "--run-name", "-n", help="Run name (default: the config file's name)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    seed: int | None = typer.Option(
        None, "--seed", help="Random seed (default: config 'seed' or 42)."
    ),
    keep_checkpoints: bool = typer.Option(
        False, "--keep-checkpoints", help="Keep checkpoints/epoch_NNNN.pt for every epoch."
    ),
    resume: str | None = typer.Option(
        None, "--resume", help="Continue RUN (id, prefix, name, path) from last.pt."
    ),
    baseline: str | None = typer.Option(
        None, "--baseline", "-b", help="Baseline RUN for gates' baseline.* (config: baseline)."
    ),
    sink: list[str] | None = typer.Option(
        None,
        "--sink",
        help=f"Mirror to {', '.join(SINK_NAMES)} or a plugin's sink (repeatable; config: sinks).",
        show_default=False,
    ),
    tag: list[str] | None = typer.Option(
        None,
        "--tag",
        "-t",
        help="key=value, repeatable: a tag of the run (over the config's tags:), queryable "
        "as tags.key.",
    ),
    print_config: bool = typer.Option(
        False, "--print-config", help="Print the resolved config and exit."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and preflight, then exit."),
    no_save: bool = typer.Option(
        False,
        "--no-save",
        help="Ephemeral: train and print the summary; no run directory is kept (nothing is "
        "written but stdout).",
    ),
    no_preflight: bool = typer.Option(False, "--no-preflight", help="Skip the preflight."),
    fmt: TextOrJson = typer.Option(
        TextOrJson.text,
        "--format",
        "-f",
        help="text (the run directory) or json {run_id, run_dir, status}.",
    ),
    parent: str | None = typer.Option(None, "--parent", hidden=True),
    trial: int | None = typer.Option(None, "--trial", hidden=True),
    optuna_trial: str | None = typer.Option(None, "--optuna-trial", hidden=True),
) -> None:
    """Train a model from a config and write a run directory."""
    from runlab.tracking.roots import runs_root

    config, rest = _split_args(config, overrides, resume)
    resume_dir = None
    if resume:
        root = runs_root(output_dir)
        resume_dir = _resume_dir(resume, root)
    cfg = _compose(config, rest, resume_dir)
    if not resume:  # -o, else the config's runs_root, else $RUNLAB_ROOT or ./runs
        root = runs_root(output_dir if output_dir is not None else cfg["runs_root"])
    if no_save:
        _check_ephemeral(cfg, resume, output_dir)
    if resume_dir is not None:
        _check_resumable(cfg)
    _apply_flags(cfg, keep_checkpoints, sink, tag)
    base = _baseline(cfg, baseline, root)
    init = None
    if cfg["trainer"]["init_from"] and resume_dir is None:  # exit 2 before anything is made
        from runlab.train.init_from import resolve_init_from

        init = resolve_init_from(str(cfg["trainer"]["init_from"]), root)
    if print_config:
        from runlab._secrets import redact
        from runlab._yaml import to_yaml

        sys.stdout.write(to_yaml(redact(cfg)))
        return
    seed_value = _seed(seed, cfg)
    if not (dry_run or no_save):
        from runlab.train.figures import start_painter

        start_painter(cfg)  # matplotlib imports in its own process while torch does here
    from runlab.train.preflight import format_report
    from runlab.train.session import preflight
    from runlab.train.supervised import resolve_device

    dev = resolve_device(device)
    data, report = None, None
    if not no_preflight or dry_run:
        report, data = preflight(cfg, dev, seed_value, base, init)
        if dry_run:
            _print_report(report, fmt)
            return
    if resume_dir is not None:  # before anything is printed or the run is touched
        from runlab.train.loops import LoopContext, get_loop

        ctx = LoopContext(device=dev, seed=seed_value, data=data)
        data = get_loop(cfg["loop"]).check_resume(cfg, resume_dir / "checkpoints" / "last.pt", ctx)
    if report is not None and fmt is TextOrJson.text:
        sys.stderr.write(format_report(report).splitlines()[0] + "\n")
    train_args = dict(
        quiet_stdout=fmt is TextOrJson.json,
        lineage={"parent": parent, "trial": trial},
        optuna_trial=optuna_trial,
        baseline=base,
        init_from=init,
    )
    if no_save:
        status = _train_ephemeral(
            cfg, config, rest, run_name, dev, seed_value, data, fmt, train_args
        )
        if EXIT_FOR_STATUS.get(status, 1):
            raise typer.Exit(EXIT_FOR_STATUS.get(status, 1))
        return
    status, run_dir, run_id = _train(
        cfg, config, rest, root, run_name, dev, seed_value, resume_dir, data, **train_args
    )
    if fmt is TextOrJson.json:
        sys.stdout.write(
            json.dumps({"run_id": run_id, "run_dir": str(run_dir), "status": status}) + "\n"
        )
    else:
        sys.stdout.write(f"{run_dir}\n")
    if status == "stopped":
        _explain_stop(run_dir)
    if EXIT_FOR_STATUS.get(status, 1):
        raise typer.Exit(EXIT_FOR_STATUS.get(status, 1))


def _resume_dir(resume: str, root: Path) -> Path:
    """The run ``--resume`` names, with what a resume needs (its config and last.pt)."""
    from runlab.tracking.resolve import resolve_run

    resume_dir = resolve_run(resume, root).path
    if not (resume_dir / "config.yaml").exists():
        raise ConfigError(f"--resume {resume}: run {resume_dir.name} has no config.yaml")
    if not (resume_dir / "checkpoints" / "last.pt").exists():
        raise ConfigError(f"--resume {resume}: run {resume_dir.name} has no checkpoints/last.pt")
    return resume_dir


def _check_resumable(cfg: dict[str, Any]) -> None:
    from runlab.train.loops import get_loop

    if not get_loop(cfg["loop"]).resumable:
        raise ConfigError(
            f"--resume continues runs of a resumable loop (supervised, episodic, or a loop with "
            "resumable = True); "
            f"this run's loop is {cfg['loop']!r}"
        )


def _check_ephemeral(cfg: dict[str, Any], resume: str | None, output_dir: Path | None) -> None:
    """--no-save writes nothing: no runs root to give, no run to continue, no mirror."""
    if resume:
        raise ConfigError("--no-save and --resume: a resumed run is saved in its own directory")
    if output_dir is not None:
        raise ConfigError("--no-save keeps no run directory: drop --output-dir")
    if cfg["sinks"]:
        raise ConfigError(
            f"--no-save writes nothing, but sinks {cfg['sinks']} would: drop them (sinks=[])"
        )


def _train_ephemeral(
    cfg: dict[str, Any],
    config: str | None,
    rest: list[str],
    run_name: str | None,
    device: Any,
    seed: int,
    data: Any,
    fmt: TextOrJson,
    train_args: dict[str, Any],
) -> str:
    """Train in a temporary runs root, print the summary (metrics.json), remove the root."""
    import shutil
    import tempfile

    from runlab.tracking.record import RunRecord

    cfg["figures"] = {**cfg["figures"], "preset": "none"}  # nobody would see them
    cfg["figures"].update({k: False for k, v in cfg["figures"].items() if v is True})
    tmp = Path(tempfile.mkdtemp(prefix="runlab-no-save-"))
    try:
        status, run_dir, _ = _train(
            cfg, config, rest, tmp, run_name, device, seed, None, data, **train_args
        )
        metrics = RunRecord(run_dir).metrics
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if fmt is TextOrJson.json:
        sys.stdout.write(json.dumps({"status": status, "metrics": metrics}, default=str) + "\n")
    else:
        shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
        sys.stdout.write(f"{status} (--no-save: nothing kept)\n")
        sys.stdout.write("".join(f"  {k}: {v}\n" for k, v in shown.items()))
    return status


def _train(
    cfg: dict[str, Any],
    config: str | None,
    overrides: list[str],
    root: Path,
    run_name: str | None,
    device: Any,
    seed: int,
    resume_dir: Path | None,
    data: Any,
    quiet_stdout: bool = False,
    lineage: dict[str, Any] | None = None,
    optuna_trial: str | None = None,
    baseline: Any = None,
    init_from: Any = None,
) -> tuple[str, Path, str]:
    from runlab.train.loops import LoopContext
    from runlab.train.session import open_run, train_config

    run, alerts = open_run(
        cfg,
        root=root,
        name=run_name or Path(str(config)).stem,
        resume_dir=resume_dir,
        overrides=overrides,
        seed=seed,
        device=str(device),
        **(lineage or {}),
    )
    callbacks = []
    if optuna_trial:
        from runlab.sweep.study import TrialReporter

        reporter = TrialReporter.from_spec(optuna_trial)
        run.update_info(params=reporter.trial.params)
        callbacks.append(reporter)
    ctx = LoopContext(
        device=device,
        seed=seed,
        data=data,
        resume=resume_dir is not None,
        callbacks=callbacks,
        baseline=baseline,
        init_from=init_from,
        progress_to_stderr=quiet_stdout,
    )
    outcome = train_config(cfg, run, ctx, alerts)
    if outcome.status == "pruned":
        sys.stderr.write(f"runlab: {outcome.message}; run {run.id} ended pruned\n")
    elif outcome.status == "interrupted":
        sys.stderr.write(f"runlab: interrupted; run {run.id} stopped ({run.dir})\n")
        raise typer.Exit(130)
    elif outcome.status == "stopped" and outcome.message:
        sys.stderr.write(f"runlab: stopped ({outcome.message}); run {run.id}\n")
    elif outcome.status == "failed":
        where = (
            f"traceback in {run.dir / 'metrics.json'}"
            if not run.end_problems
            else f"traceback not saved: {'; '.join(run.end_problems)}"
        )
        sys.stderr.write(f"runlab: error: run failed: {outcome.message} ({where})\n")
    return outcome.status, run.dir, run.id


def _explain_stop(run_dir: Path) -> None:
    from runlab.tracking.record import RunRecord

    reason = RunRecord(run_dir).metrics.get("stop_reason")
    if reason:
        sys.stderr.write(f"runlab: run stopped: {reason} (last.pt saved; --resume continues)\n")


def _baseline(cfg: dict[str, Any], ref: str | None, root: Path) -> Any:
    """The baseline run (``--baseline`` wins over the config's ``baseline:``), recorded in the
    config by id so the run says exactly which run it was compared with."""
    ref = ref or cfg.get("baseline")
    if not ref:
        return None
    from runlab.monitor.baseline import load_baseline

    base = load_baseline(str(ref), root)
    cfg["baseline"] = base.id
    return base


def _print_report(report: dict[str, Any], fmt: TextOrJson) -> None:
    from runlab.train.preflight import format_report

    if fmt is TextOrJson.json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(format_report(report) + "\n")


def check(
    config: str = typer.Argument(..., help="Config file (YAML or JSON)."),
    overrides: list[str] | None = typer.Argument(
        None, help="Overrides, as for runlab run.", show_default=False
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    fmt: TextOrJson = typer.Option(TextOrJson.text, "--format", "-f", help="text or json."),
    baseline: str | None = typer.Option(
        None, "--baseline", "-b", help="Baseline RUN for gates' baseline.*."
    ),
    root: Path | None = typer.Option(
        None,
        "--root",
        "-r",
        help="Runs root where the baseline is (default: $RUNLAB_ROOT or ./runs).",
    ),
) -> None:
    """Validate a config and preflight it in seconds: data, model, 2 train batches, validation,
    evaluators, gates, checkpoint round trip. Writes no run directory."""
    from runlab.tracking.roots import runs_root
    from runlab.train.checks import load_checked
    from runlab.train.session import preflight
    from runlab.train.supervised import resolve_device

    cfg = load_checked(config, list(overrides or []))
    base = _baseline(cfg, baseline, runs_root(root))
    report, _ = preflight(cfg, resolve_device(device), _seed(seed, cfg), base)
    _print_report(report, fmt)


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": True})(run)
    app.command("check")(check)
