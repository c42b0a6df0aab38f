"""The one place that trains a config: ``runlab run``, ``runlab tune --in-process`` and (through
``runlab run``) every sweep and study trial call :func:`train_config`. It builds the run,
attaches its listeners (the mirrors, the alerts), looks the loop up and runs it, and returns the
outcome; the caller decides what to print."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runlab.errors import ConfigError, exception_text
from runlab.tracking.run import Pruned, Run
from runlab.train.loops import LoopContext, get_loop


@dataclass
class Outcome:
    """How a run ended: ``status`` is the run's (finished, stopped, pruned, failed, preempted)
    or ``interrupted`` (a Ctrl-C the run did not ask for)."""

    status: str
    run: Run
    message: str = ""  # why it failed, was pruned, or stopped by an interrupt


def preflight(
    cfg: dict[str, Any], device: Any, seed: int, baseline: Any = None, init_from: Any = None
) -> tuple[dict[str, Any], Any]:
    """Run every stage of the config's loop; returns (report, the loaded dataset for the real
    run to reuse). ``baseline`` (a runlab.monitor.Baseline) lets the gates stage check
    ``baseline.*``."""
    import time

    report: dict[str, Any] = {"stages": {}, "device": str(device)}
    t0 = time.perf_counter()
    loop = get_loop(cfg["loop"])
    ctx = LoopContext(device=device, seed=seed, baseline=baseline, init_from=init_from)
    data = loop.preflight(cfg, ctx, report)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report, data


def open_run(
    cfg: dict[str, Any],
    *,
    root: Path | None = None,
    name: str = "run",
    resume_dir: Path | None = None,
    overrides: Sequence[str] = (),
    info: Mapping[str, Any] | None = None,
    **run_options: Any,
) -> tuple[Run, Any]:
    """The run of ``cfg`` (a new one under ``root``, or ``resume_dir`` reopened) with its
    listeners attached; returns ``(run, alerts)``. A bad sink raises ConfigError before any
    directory is made."""
    from runlab.monitor.alerts import Alerts
    from runlab.sinks.mirror import mirror_for

    run_options.setdefault("tags", cfg.get("tags") or {})  # the config's tags: (and --tag)
    run_options.setdefault("system_interval", cfg.get("system_metrics_s"))
    mirror = mirror_for(cfg["sinks"], config=cfg)  # each sink's options: its block of cfg
    listeners = [mirror] if mirror is not None else []
    if resume_dir is not None:
        run = Run.reopen(resume_dir, listeners=listeners, **run_options)
        run.update_info(resume_overrides=list(overrides))
    else:
        run = Run(
            root=root,
            name=name,
            config=cfg,
            overrides=list(overrides),
            listeners=listeners,
            **run_options,
        )
    if info:
        run.update_info(**info)
    _process_event(run)
    alerts = Alerts(cfg["alerts"], run)
    if alerts.enabled:
        run.on_end(alerts.run_ended)
    return run, alerts


def _process_event(run: Run) -> None:
    """How a sweep's or study's launcher started this run's process (RUNLAB_PROCESS, set by
    runlab.sweep.warm): forked from the warm server, or fresh and why."""
    how = os.environ.pop("RUNLAB_PROCESS", "")  # for this run only, not a command it starts
    if how == "warm":
        run.event("on_process", process="warm")
    elif how.startswith("fresh"):
        run.event("on_process", process="fresh", reason=how.partition(": ")[2])


def train_config(cfg: dict[str, Any], run: Run, ctx: LoopContext, alerts: Any = None) -> Outcome:
    """Train ``cfg`` in ``run`` with its loop; the run ends with its status whatever happens,
    and the outcome says which. A Ctrl-C that the run did not ask for is ``interrupted``."""
    loop = get_loop(cfg["loop"])
    if ctx.resume and not loop.resumable:
        raise ConfigError(
            f"--resume continues runs of a resumable loop (supervised, episodic, or a loop with "
            "resumable = True); "
            f"this run's loop is {cfg['loop']!r}"
        )
    ctx.alerts = alerts if alerts is not None else ctx.alerts
    ref = cfg["trainer"].get("init_from")
    try:
        with run:
            if ref and ctx.init_from is None and not ctx.resume:  # from this run's own root
                from runlab.train.init_from import resolve_init_from

                ctx.init_from = resolve_init_from(str(ref), run.dir.parent)
            loop.train(cfg, run, ctx)
    except Pruned as pruned:
        return Outcome("pruned", run, str(pruned))
    except KeyboardInterrupt:
        if run.stop_requested:  # `runlab stop` on a loop that does not poll: ended stopped
            return Outcome("stopped", run, run.stop_reason or "")
        return Outcome("interrupted", run)
    except Exception as err:
        return Outcome("failed", run, exception_text(err))
    return Outcome(run.status.value, run)
