"""Optuna studies: a search space in the grammar of Hydra's Optuna sweeper, an ask/tell loop in
this process, and every trial a `runlab run` in a child process that reports its objective to
the trial each epoch (so the pruner can stop it)."""

from __future__ import annotations

import json
import math
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from runlab._imports import require
from runlab._io import atomic_write_text, read_json
from runlab._secrets import redact, redact_url
from runlab._yaml import to_yaml
from runlab.config.compose import compose
from runlab.errors import ConfigError
from runlab.sweep.batch import BatchLauncher
from runlab.sweep.launchers import Job, JobResult, launcher_choice, make_launcher
from runlab.sweep.plugins import PRUNERS, SAMPLERS
from runlab.tracking.groups import StudyRecord
from runlab.train.checks import ConfigSeries, load_checked

T = TypeVar("T")


# ---------------------------------------------------------------------------- search space
def parse_space(items: list[str]) -> tuple[dict[str, Any], list[str]]:
    """(Optuna distributions by key, the fixed overrides) from overrides like
    ``optim.lr='tag(log, interval(1e-6, 1e-4))'``, ``trainer.batch_size='choice(64,128)'``,
    ``model.blocks='range(2,6)'`` (6 excluded, as in a grid), ``a=1,2``."""
    optuna = require("optuna", "tune", "runlab tune")
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    dist = optuna.distributions
    space: dict[str, Any] = {}
    fixed: list[str] = []
    try:
        parsed = OverridesParser.create().parse_overrides(items)
    except Exception as err:
        raise ConfigError(f"cannot parse search space: {str(err).splitlines()[0]}") from err
    for o in parsed:
        key, value = o.get_key_element(), o.value()
        if not o.is_sweep_override():
            fixed.append(
                f"{key}={o.get_value_element_as_str()}" if not key.startswith("~") else key
            )
        elif isinstance(value, IntervalSweep):
            lo, hi, log = value.start, value.end, "log" in value.tags
            if lo is None or hi is None or not lo < hi:
                raise ConfigError(f"{key}: interval({lo}, {hi}) needs low < high")
            if log and lo <= 0:
                raise ConfigError(f"{key}: a log interval needs low > 0, got {lo}")
            both_int = isinstance(lo, int) and isinstance(hi, int)
            space[key] = (
                dist.IntDistribution(lo, hi, log=log)
                if both_int
                else dist.FloatDistribution(float(lo), float(hi), log=log)
            )
        elif isinstance(value, RangeSweep):
            space[key] = _range_distribution(key, o, value)
        elif isinstance(value, ChoiceSweep):
            choices = [
                c if isinstance(c, (int, float, str, bool)) else _hydra_str(c) for c in value.list
            ]
            space[key] = dist.CategoricalDistribution(choices)
        else:
            raise ConfigError(f"{key}: unsupported search value {value!r}")
    return space, fixed


def _range_distribution(key: str, override: Any, value: Any) -> Any:
    """``range(a, b[, step])`` as Hydra expands it (b excluded; float steps and negative ones
    too): an integer or a stepped float distribution over exactly those values."""
    import optuna

    if value.start is None or value.stop is None:
        raise ConfigError(f"{key}: range needs a start and a stop")
    step = value.step if value.step is not None else 1
    text = f"range({value.start}, {value.stop}, {step})"
    if step == 0:
        raise ConfigError(f"{key}: {text} needs a step other than 0")
    values = list(override.sweep_iterator())
    if not values:
        raise ConfigError(f"{key}: {text} is empty (the stop is excluded)")
    lo, hi = min(values), max(values)
    if any(isinstance(v, float) for v in (value.start, value.stop, step)):
        return optuna.distributions.FloatDistribution(float(lo), float(hi), step=abs(float(step)))
    return optuna.distributions.IntDistribution(int(lo), int(hi), step=abs(int(step)))


def _hydra_str(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_hydra_str(v) for v in value) + "]"
    return str(value)


def _as_override(key: str, value: Any) -> str:
    return f"{key}={value}"


def search_items(config: str, fixed: list[str], items: list[str]) -> list[str]:
    """The config's ``search:`` block (key: grammar string) ahead of command-line ones."""
    block = compose(config, fixed).get("search") or {}
    if not isinstance(block, dict):
        raise ConfigError("search: must map keys to search expressions")
    from_block = [f"{k}={v}" for k, v in block.items()]
    return from_block + items


# ---------------------------------------------------------------------------- the study
def make_sampler(name: str, seed: int | None, space: dict[str, Any]) -> Any:
    """An Optuna sampler by name (``--sampler``: tpe, random, cmaes, grid, nsgaii, a plugin's
    under the entry-point group ``runlab.samplers``, or ``pkg.mod:factory``); a factory is
    called as ``factory(seed, space)``."""
    require("optuna", "tune", "runlab tune")
    return SAMPLERS.load(name, "--sampler")(seed, space)


def tpe_sampler(seed: int | None, space: dict[str, Any]) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def random_sampler(seed: int | None, space: dict[str, Any]) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def cmaes_sampler(seed: int | None, space: dict[str, Any]) -> Any:
    import optuna

    return optuna.samplers.CmaEsSampler(seed=seed)


def nsgaii_sampler(seed: int | None, space: dict[str, Any]) -> Any:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed)


def grid_sampler(seed: int | None, space: dict[str, Any]) -> Any:
    import optuna

    grid = {}
    for key, d in space.items():
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            grid[key] = list(d.choices)
        elif isinstance(d, optuna.distributions.IntDistribution):
            grid[key] = list(range(d.low, d.high + 1, d.step))
        elif d.step is not None:  # a float range(a, b, step)
            count = round((d.high - d.low) / d.step) + 1
            grid[key] = [d.low + i * d.step for i in range(count)]
        else:
            raise ConfigError(f"--sampler grid needs discrete values; {key} is an interval")
    return optuna.samplers.GridSampler(grid, seed=seed)


def resumed_seed(seed: int, trials_so_far: int) -> int:
    """The sampler's seed for a study that already has ``trials_so_far`` trials. A sampler
    seeded with ``seed`` again would ask for the first trials' parameters again (Optuna's
    samplers keep their random state in memory only); this seed is new for every resume and
    the same for the same history, so a resumed study stays reproducible."""
    import numpy as np

    return int(np.random.SeedSequence([seed, trials_so_far]).generate_state(1)[0])


def make_pruner(name: str) -> Any:
    """An Optuna pruner by name (``--pruner``: median, successive_halving, hyperband, none, a
    plugin's under ``runlab.pruners``, or ``pkg.mod:factory``, called with no arguments)."""
    require("optuna", "tune", "runlab tune")
    return PRUNERS.load(name, "--pruner")()


def median_pruner() -> Any:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def successive_halving_pruner() -> Any:
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner()


def hyperband_pruner() -> Any:
    import optuna

    return optuna.pruners.HyperbandPruner()


def none_pruner() -> Any:
    import optuna

    return optuna.pruners.NopPruner()


def storage_for(url: str | None, root: Path, opened: bool = False) -> Any:
    """Optuna storage: default SQLite under the runs root, with a busy timeout so parallel
    trials never fail with "database is locked"; any other Optuna URL as given. ``opened``:
    the study's process has created and checked it already (a trial's run skips that)."""
    optuna = require("optuna", "tune", "runlab tune")
    if url is None:
        (root / "studies").mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(root / 'studies' / 'optuna.db').resolve()}"
    if url.endswith(".log") or url.startswith("journal:"):
        path = url.removeprefix("journal:")
        try:
            backend = optuna.storages.journal.JournalFileBackend(path)
        except OSError as err:
            raise ConfigError(f"--storage {url!r}: cannot open the journal file ({err})") from err
        return optuna.storages.JournalStorage(backend)
    if "://" not in url:
        raise ConfigError(
            f"--storage {url!r} is not a storage URL; use sqlite:///study.db, "
            "postgresql://user@host/db, mysql+pymysql://... or a path ending in .log"
        )
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    skip = {"skip_compatibility_check": True, "skip_table_creation": True} if opened else {}
    try:
        return raced(lambda: optuna.storages.RDBStorage(url, engine_kwargs=kwargs, **skip))
    except ImportError as err:  # the URL's database driver is not installed
        cause = err.__cause__ if isinstance(err.__cause__, ImportError) else err
        module = (cause.name or "").split(".")[0]
        raise ConfigError(
            f"--storage {redact_url(url)!r}: the database driver for {url.split('://')[0]!r} is "
            f"not installed ({_first_line(cause)}); pip install {DRIVERS.get(module, module)}"
        ) from err
    except Exception as err:  # no such dialect, cannot connect, bad credentials
        raise ConfigError(f"--storage {redact_url(url)!r}: {_first_line(err)}") from err


def journal_url(root: Path, name: str, create: bool = True) -> str:
    """A study's default storage on a scheduler: Optuna's journal file (its file lock works on
    a shared filesystem, where SQLite's does not)."""
    folder = root / "studies" / name
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return f"journal:{(folder / 'journal.log').resolve()}"


# A trial RUNNING this long without a run directory lost its worker before the run started.
NO_RUN_GRACE_S = 600.0


def retry_stale_trials(study: Any, root: Path, name: str, now: float | None = None) -> list[int]:
    """Fail the study's RUNNING trials whose worker died and ask for each again, same
    parameters, with user attribute ``retry_of``. A worker died when its trial's run crashed
    (stale heartbeat, dead pid), ended TOLD_GRACE_S ago without the trial being told (a
    preempted worker job: the run saved and ended, the worker was killed), or never appeared
    in NO_RUN_GRACE_S. Two workers that find the same trial: one of them retries it."""
    import optuna

    from runlab.sweep.batch import group_runs

    runs = group_runs(root, name, f"study:{name}")
    now = time.time() if now is None else now
    retried = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        why = _worker_gone(trial, runs.get(trial.number), now)
        if why is None:
            continue
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", why)
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        except (RuntimeError, ValueError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker failed it first: that one retries it
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        retried.append(trial.number)
    return retried


# A worker tells its trial the moment the run ends; one that has not this long after is gone.
TOLD_GRACE_S = 120.0


def _worker_gone(trial: Any, run: Any, now: float) -> str | None:
    """Why ``trial``'s worker is gone, or None while it may be alive."""
    from runlab.tracking.liveness import iso_to_epoch
    from runlab.tracking.state import LIVE_STATES, RunState

    if run is None:
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        if now - started > NO_RUN_GRACE_S:
            return f"its worker died before the run started ({NO_RUN_GRACE_S:.0f} s without one)"
        return None
    state = run.state
    if state is RunState.CRASHED:
        return "its worker died (the run's heartbeat is stale)"
    ended = iso_to_epoch(run.info.get("ended")) if state not in LIVE_STATES else None
    if ended is not None and now - ended > TOLD_GRACE_S:
        return f"its worker died after the run ended {state.value} (the trial was never told)"
    return None


def raced(make: Callable[[], T], attempts: int = 12) -> T:
    """``make()``, again after a short wait when another process created the same schema or
    study at the same moment (two `runlab tune` started together on a new storage: SQLite's
    "table already exists", a UNIQUE constraint, "database is locked")."""
    for attempt in range(attempts):
        try:
            return make()
        except Exception as err:
            transient = type(err).__name__ in ("OperationalError", "IntegrityError")
            if not transient or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
    raise AssertionError("unreachable")


# module SQLAlchemy imports -> what pip installs
DRIVERS = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient"}


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def parse_timeout(text: str | None) -> float | None:
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except ValueError:
        raise ConfigError(f"--timeout {text!r}: use seconds or 30s, 30m, 2h") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"--timeout {text!r}: give a time above 0, e.g. 30s, 30m, 2h")
    return seconds


def run_study(
    config: str,
    overrides: list[str],
    root: Path,
    trials: int = 20,
    timeout: str | None = None,
    jobs: int = 1,
    sampler: str = "tpe",
    pruner: str = "median",
    objectives: list[str] | None = None,
    directions: list[str] | None = None,
    study_name: str | None = None,
    storage: str | None = None,
    seed: int | None = None,
    launcher: str | None = None,
    in_process: bool = False,
    launcher_options: list[str] | None = None,
    batch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run a study here (trials on the launcher), or on a scheduler submit its workers and
    return (``batch``: ``workers``, ``dry_run``): each worker job runs ask -> run -> tell
    against the study's storage (by default a journal file beside the study, safe on NFS)."""
    require("optuna", "tune", "runlab tune")
    from runlab.tracking.roots import check_root, plain_name

    root = check_root(root.resolve())  # trials elsewhere write where this process reads
    objectives, directions = _check_arguments(trials, jobs, in_process, objectives, directions)
    seconds = parse_timeout(timeout)
    space, fixed = parse_space(
        search_items(config, [o for o in overrides if "(" not in o and "," not in o], overrides)
    )
    if not space:
        raise ConfigError(
            "no search space: give a search: block or overrides like "
            "optim.lr='tag(log, interval(1e-5, 1e-2))'"
        )
    corner = _check_space(config, fixed, space)
    chosen = launcher_choice(launcher, launcher_options, corner["launcher"])
    pool = make_launcher(*chosen, jobs=jobs)
    name = plain_name(study_name, "--study-name") if study_name else Path(config).stem
    if isinstance(pool, BatchLauncher) or batch is not None:
        from runlab.sweep.submit import WorkerPlan, refuse_secrets, submit_study, worker_count

        if not isinstance(pool, BatchLauncher):
            raise ConfigError("--workers and --dry-run are for a scheduler: add --launcher slurm")
        worker_count(batch or {}, pool)
        refuse_secrets([overrides, ["--storage", storage or ""]])  # before anything is written
        pool.check_reachable()
        plan = WorkerPlan(
            config, overrides, trials, timeout, sampler, pruner, objectives, directions, seed
        )
        dry = bool((batch or {}).get("dry_run"))
        storage = storage or journal_url(root, name, create=not dry)
        if not dry:  # the study exists (and a bad storage fails) before any worker starts
            _open_study(name, storage, root, sampler, pruner, seed, space, directions)
        return submit_study(pool, chosen, plan, root, name, storage, batch or {})
    study = _open_study(name, storage, root, sampler, pruner, seed, space, directions)
    retry_stale_trials(study, root, name)
    folder = root / "studies" / name
    url = storage if storage else f"sqlite:///{(root / 'studies' / 'optuna.db').resolve()}"
    source = _Trials(study, space, config, fixed, root, name, objectives, url)
    deadline = time.time() + seconds if seconds else None
    if in_process:
        configs = ConfigSeries(config, fixed)  # the shared part composed once for all trials
        for job in source.jobs(trials, deadline):
            source.done(
                _run_in_process(job, source.asked[job.index], configs, root, name, objectives)
            )
    else:
        pool.launch(source.jobs(trials, deadline), source.done)
    summary = _write_outputs(study, folder, config, fixed, objectives, root)
    summary["asked"] = sorted(source.numbers)  # the trials this invocation ran
    return summary


def _check_arguments(
    trials: int,
    jobs: int,
    in_process: bool,
    objectives: list[str] | None,
    directions: list[str] | None,
) -> tuple[list[str], list[str]]:
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if in_process and jobs != 1:
        raise ConfigError("--in-process runs one trial at a time: drop --jobs or --in-process")
    objectives = objectives or ["val.loss"]
    directions = directions or ["minimize"] * len(objectives)
    if len(directions) != len(objectives):
        raise ConfigError(f"{len(objectives)} --objective but {len(directions)} --direction")
    for d in directions:
        if d not in ("minimize", "maximize"):
            raise ConfigError(f"--direction must be minimize or maximize, got {d!r}")
    return objectives, directions


def _open_study(
    name: str,
    storage: str | None,
    root: Path,
    sampler: str,
    pruner: str,
    seed: int | None,
    space: dict[str, Any],
    directions: list[str],
) -> Any:
    """The study, created or loaded (resumed); a bad sampler, pruner or storage URL fails
    before anything is written."""
    optuna = require("optuna", "tune", "runlab tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = make_sampler(sampler, seed, space)
    prune = make_pruner(pruner) if len(directions) == 1 else optuna.pruners.NopPruner()
    store = storage_for(storage, root)
    (root / "studies" / name).mkdir(parents=True, exist_ok=True)
    study = raced(
        lambda: optuna.create_study(
            study_name=name,
            storage=store,
            load_if_exists=True,
            sampler=chosen,
            pruner=prune,
            directions=directions,
        )
    )
    done_before = len(study.get_trials(deepcopy=False))
    if seed is not None and done_before:  # resumed: continue the sequence, never repeat it
        study.sampler = make_sampler(sampler, resumed_seed(seed, done_before), space)
    return study


class _Trials:
    """The study's trials as launcher jobs, asked for one at a time when a slot is free, and
    told back as each finishes."""

    def __init__(
        self,
        study: Any,
        space: dict[str, Any],
        config: str,
        fixed: list[str],
        root: Path,
        name: str,
        objectives: list[str],
        url: str,
    ) -> None:
        self.study, self.space, self.config, self.fixed = study, space, config, fixed
        self.root, self.name, self.objectives, self.url = root, name, objectives, url
        self.folder = root / "studies" / name
        self.asked: dict[int, Any] = {}
        self.numbers: list[int] = []
        self.stop_requested = False

    def jobs(self, trials: int, deadline: float | None) -> Iterator[Job]:
        for _ in range(trials):
            if self.stop_requested or (deadline is not None and time.time() > deadline):
                return
            trial = self.study.ask(self.space)
            self.asked[trial.number] = trial
            self.numbers.append(trial.number)
            yield self._job(trial)

    def _job(self, trial: Any) -> Job:
        params = [_as_override(k, v) for k, v in trial.params.items()]
        spec = json.dumps(
            {
                "storage": self.url,
                "study": self.name,
                "trial_id": trial._trial_id,
                "objective": self.objectives[0],
                "report": len(self.objectives) == 1,
            }
        )
        args = [str(Path(self.config).resolve()), *self.fixed, *params]
        args += ["--output-dir", str(self.root), "--run-name", self.name]
        args += ["--parent", f"study:{self.name}", "--trial", str(trial.number)]
        return Job(trial.number, [*args, "--optuna-trial", spec], str(self.folder / "logs"))

    def done(self, result: JobResult) -> None:
        trial = self.asked.pop(result.index)
        if self.study._storage.get_trial(trial._trial_id).state.is_finished():
            # another worker took this one for dead (told too late) and has asked it again
            sys.stderr.write(f"runlab: trial {result.index} was retried meanwhile; not told\n")
            return
        try:
            _tell(self.study, trial, result, self.objectives, self.root)
        except RuntimeError as err:
            # GridSampler calls study.stop() when its grid is used up, which Optuna allows only
            # inside optimize(); the trial is stored before that (a `finally` in Optuna's tell).
            if "Study.stop" not in str(err):
                raise
            self.stop_requested = True
        _write_trials(self.study, self.folder, self.objectives)


def _run_in_process(
    job: Job, trial: Any, configs: ConfigSeries, root: Path, name: str, objectives: list[str]
) -> JobResult:
    """A trial in this process (``--in-process``), through the loop the config names, as
    ``runlab run`` trains it: no interpreter or import cost, but GPU memory and any leaked
    state stay with the parent. (Per-trial preflight is skipped.)"""
    from runlab.monitor.baseline import load_baseline
    from runlab.train.loops import LoopContext
    from runlab.train.session import open_run, train_config
    from runlab.train.supervised import resolve_device

    args = job.args
    overrides = args[1 : args.index("--output-dir")]
    try:
        cfg = configs.load(overrides[len(configs.common) :])
        baseline = load_baseline(cfg["baseline"], root) if cfg["baseline"] else None
        run, alerts = open_run(
            cfg,
            root=root,
            name=name,
            overrides=overrides,
            info={"params": trial.params},
            seed=42,
            parent=f"study:{name}",
            trial=trial.number,
            capture_stdout=False,
            handle_signals=False,
        )
    except Exception as err:
        return JobResult(job.index, 2, status="failed", stderr_tail=f"runlab: error: {err}")
    ctx = LoopContext(
        device=resolve_device("auto"),
        seed=42,
        callbacks=[TrialReporter(trial, objectives[0], enabled=len(objectives) == 1)],
        baseline=baseline,
        show_progress=False,
        progress_to_stderr=True,
    )
    outcome = train_config(cfg, run, ctx, alerts)
    if outcome.status == "interrupted":
        raise KeyboardInterrupt
    status = outcome.status if outcome.status in ("pruned", "failed") else "finished"
    return JobResult(job.index, 0, run.id, str(run.dir), status)


def _check_space(config: str, fixed: list[str], space: dict[str, Any]) -> dict[str, Any]:
    """Compose the config at a corner of the space: a bad key or type fails before any trial."""
    corner = []
    for key, d in space.items():
        value = d.choices[0] if hasattr(d, "choices") else d.low
        corner.append(_as_override(key, value))
    return load_checked(config, fixed + corner)


def _tell(study: Any, trial: Any, result: JobResult, objectives: list[str], root: Path) -> None:
    import optuna

    state = optuna.trial.TrialState
    if result.run_id:
        trial.set_user_attr("run_id", result.run_id)
    if result.status == "pruned":
        study.tell(trial, state=state.PRUNED)
        return
    values = _objective_values(result.run_dir, objectives) if result.status == "finished" else None
    if values is None or any(v is None or math.isnan(v) for v in values):
        reason = _failure_reason(result, values)
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=state.FAIL)
        return
    study.tell(trial, values if len(values) > 1 else values[0])


def _objective_values(run_dir: str | None, objectives: list[str]) -> list[float | None] | None:
    from runlab.sweep.runner import objective_value

    return [objective_value(run_dir, o) for o in objectives] if run_dir else None


def _failure_reason(result: JobResult, values: list[float | None] | None) -> str:
    if result.run_dir and Path(result.run_dir, "metrics.json").exists():
        error = read_json(Path(result.run_dir) / "metrics.json").get("error")
        if error:
            return f"{error.get('type')}: {error.get('message')}"
    if values is not None:
        return "the objective is missing or NaN in metrics.json"
    lines = [ln for ln in result.stderr_tail.splitlines() if ln.startswith("runlab: error")]
    if lines:
        return lines[-1]
    if result.returncode < 0:  # a segfault, the OOM killer, kill -9
        try:
            name = signal.Signals(-result.returncode).name
        except ValueError:
            name = f"signal {-result.returncode}"
        return f"killed by {name} (exit code {result.returncode})"
    return f"exit code {result.returncode}"


def _write_trials(study: Any, folder: Path, objectives: list[str]) -> list[dict[str, Any]]:
    """trials.jsonl and study.json, rewritten after every trial so that `runlab ui` and
    readers see a study while it runs."""
    rows = []
    for t in study.trials:
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "params": redact(t.params),
                "values": t.values,
                "duration": duration,
                "run_id": t.user_attrs.get("run_id"),
                "fail_reason": t.user_attrs.get("fail_reason"),
                "retry_of": t.user_attrs.get("retry_of"),
            }
        )
    directions = [d.name.lower() for d in study.directions]
    info = {"study": study.study_name, "objectives": objectives, "directions": directions}
    StudyRecord(folder).write(rows, info)
    return rows


def _write_outputs(
    study: Any, folder: Path, config: str, fixed: list[str], objectives: list[str], root: Path
) -> dict[str, Any]:
    import optuna

    rows = _write_trials(study, folder, objectives)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trials if complete else []
    summary: dict[str, Any] = {
        "study": study.study_name,
        "folder": str(folder),
        "trials": rows,
        "objectives": objectives,
        "best": [
            {
                "number": t.number,
                "values": t.values,
                "params": redact(t.params),
                "run_id": t.user_attrs.get("run_id"),
            }
            for t in best
        ],
    }
    if len(objectives) == 1 and complete:
        params = study.best_trial.params
        atomic_write_text(folder / "best_params.yaml", to_yaml(redact(params)))
        cfg = load_checked(config, fixed + [_as_override(k, v) for k, v in params.items()])
        cfg.pop("search", None)
        atomic_write_text(folder / "best_config.yaml", to_yaml(redact(cfg)))
    return summary


def study_summary(root: Path, name: str, storage: str) -> dict[str, Any]:
    """A study's trials and best trials as ``runlab tune --format json`` gives them, read from
    its storage, and its trials.jsonl rewritten: after worker jobs ended (each wrote its own
    view as it ended; two ending together may each have missed the other's last trial)."""
    import optuna

    opened = storage_for(storage, root, opened=True)
    study = raced(lambda: optuna.load_study(study_name=name, storage=opened))
    folder = root / "studies" / name
    rows = _write_trials(study, folder, StudyRecord(folder).objectives)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trials if complete else []
    return {
        "study": name,
        "trials": rows,
        "best": [{"number": t.number, "run_id": t.user_attrs.get("run_id")} for t in best],
    }


class TrialReporter:
    """In a trial's process: report the objective to the Optuna trial after every epoch and
    stop the run (status ``pruned``) when the pruner says so."""

    def __init__(self, trial: Any, objective: str, enabled: bool = True) -> None:
        self.trial, self.objective, self.enabled = trial, objective, enabled

    @classmethod
    def from_spec(cls, spec: str) -> TrialReporter:
        """In a child process: the trial the parent asked for, from --optuna-trial's JSON."""
        optuna = require("optuna", "tune", "runlab tune")
        info = json.loads(spec)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(
            study_name=info["study"], storage=storage_for(info["storage"], Path("."), opened=True)
        )
        trial = optuna.trial.Trial(study, int(info["trial_id"]))
        return cls(trial, str(info["objective"]), bool(info.get("report", True)))

    def __call__(self, epoch: int, metrics: dict[str, dict[str, Any]]) -> None:
        from runlab.tracking.run import Pruned

        split, _, key = self.objective.partition(".")
        value = metrics.get(split, {}).get(key)
        if not self.enabled or not isinstance(value, (int, float)) or math.isnan(value):
            return
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            raise Pruned(
                f"pruned by the study's pruner at epoch {epoch} ({self.objective} = {value:.6g})"
            )
