"""Regenerate docs/config.md from src/runlab/config/schema.py: python tools/gen_config_doc.py"""
import dataclasses, typing
from runlab.config.schema import RunlabConfig
from runlab.evaluators import EVALUATORS, metrics_of
from runlab.sinks.base import SINKS
from runlab.sweep.launchers import LAUNCHERS
from runlab.train.loops import LOOPS
from runlab.train.plugins import DATA_SOURCES, MODELS, OPTIMIZERS, SCHEDULES
def names(registry):  # the built-in names, from the registry: never listed by hand here
    return ", ".join(f"`{n}`" for n in registry.builtin())
MAXIMISED = ", ".join(sorted({m for e in EVALUATORS.builtin() for m, d in metrics_of(e).items() if d == "max"}))
def tname(h):
    s = str(h).replace("typing.", "").replace("NoneType", "null").replace("Literal", "")
    return s.replace("<class '", "").replace("'>", "")
hints = typing.get_type_hints(RunlabConfig)
notes = {
 "data.source": f"required: a .npz, a CSV/Parquet panel, {names(DATA_SOURCES)}, a plugin's (entry points `runlab.data`) or `pkg.mod:fn`",
 "data.scaler": "fitted on train only, saved in checkpoints", "data.allow_nan": "accept non-finite values (features become 0 after scaling, rows with bad targets dropped)",
 "data.kwargs": "keyword arguments for an import-path source", "data.features": "panel feature columns (default: every other numeric column)",
 "data.train_end": "panels: last train date, inclusive (default: 60% of dates)", "data.val_end": "panels: last val date, inclusive (default: 80%)",
 "data.target": "panels: the target column", "data.date_col": "panels: the date column", "data.asset_col": "panels: the asset id column",
 "data.n_samples": "synthetic regression/classification rows", "data.n_features": "synthetic features", "data.n_classes": "synthetic classes",
 "data.noise": "synthetic noise level", "data.n_dates": "synthetic panel dates", "data.n_assets": "synthetic panel assets",
 "data.val_fraction": "synthetic rows: share for val", "data.test_fraction": "synthetic rows: share for test (val + test < 1)", "data.seed": "synthetic data seed",
 "model.name": f"{names(MODELS)}, a plugin's (`runlab.models`) or `pkg.mod:fn`; or give `_target_`", "model.hidden": "widths (mlp), or the width (resmlp, gru)", "model.blocks": "resmlp residual blocks; gru layers",
 "model.dropout": "", "model.activation": "mlp, resmlp",
 "model.norm": "resmlp LayerNorm", "model.in_features": "inferred from the data", "model.out_features": "inferred from task and data",
 "trainer.epochs": "", "trainer.grad_clip": "max gradient norm",
 "trainer.batch_size": "rows per batch; dates per batch for panels", "trainer.accumulate": "micro-batches per optimizer step",
 "trainer.mixed_precision": "bf16 autocast; fp16 autocast + GradScaler (CUDA only)", "trainer.compile": "torch.compile the model",
 "trainer.on_nan": "non-finite loss: fail the run, or skip the step (one host sync per step)", "trainer.monitor": "decides best.pt and best_epoch",
 "trainer.mode": f"default: max for the metrics evaluators declare so ({MAXIMISED}); else min", "trainer.early_stopping": "",
 "trainer.early_stopping.patience": "epochs without improvement before stopping (null: off)", "trainer.early_stopping.monitor": "default: trainer.monitor",
 "trainer.early_stopping.min_delta": "smallest change that counts as improvement", "trainer.early_stopping.mode": "default: as trainer.mode",
 "trainer.log_every": "optimizer steps between step logs (the only host syncs)", "trainer.data_on_device": "hold data on the device (auto: if under 40% of free CUDA memory)",
 "trainer.loss": "auto: the task's first loss", "optim.name": f"{names(OPTIMIZERS)}, a plugin's (`runlab.optimizers`) or `pkg.mod:fn`; or give `_target_` (its other keys are kwargs)", "optim.momentum": "sgd only",
 "optim.lr": "", "optim.weight_decay": "",
 "schedule.name": f"{names(SCHEDULES)}, a plugin's (`runlab.schedules`) or `pkg.mod:fn`", "schedule.warmup_steps": "cosine: linear warmup steps", "schedule.min_lr": "cosine floor", "schedule.step_size": "step: epochs between decays",
 "schedule.gamma": "step: decay factor", "schedule.factor": "plateau: decay factor", "schedule.patience": "plateau: epochs without improvement",
 "checkpoint.every": "keep epoch_NNNN.pt every N epochs", "checkpoint.keep": "keep every epoch_NNNN.pt (--keep-checkpoints)",
 "portfolio.method": "scores -> weights: long the top quantile and short the bottom, or long only",
 "portfolio.quantile": "share of each date's assets in a leg (at most 0.5 for long_short)", "portfolio.top_k": "long_only: this many assets (instead of quantile)",
 "portfolio.weighting": "equal, or by distance of the score from the date's median", "portfolio.gross": "gross exposure (long_short: half a leg)",
 "portfolio.transaction_cost_bps": "on traded notional (turnover vs drifted weights)", "portfolio.leverage_limit": "max gross exposure; scaled down above it",
 "portfolio.borrowing_cost": "annual rate on long gross above 1 plus short notional", "portfolio.initial_value": "", "portfolio.periods_per_year": "annualisation",
 "episodic.window": "steps per episode", "episodic.batch_episodes": "episodes per optimizer step (one batched pass)",
 "episodic.episodes_per_epoch": "", "episodic.transform": "outputs -> allocations: softmax over assets; tanh or identity scaled to gross <= 1",
 "episodic.transition_penalty": "times the L1 change of allocations", "episodic.warm_start_epochs": "supervised epochs first (MSE to next returns)",
 "episodic.reward": "log_growth, or an import path fn(allocations, prices, transition_penalty)",
 "gates": "success criteria evaluated at epoch ends; each item has the keys below (docs/monitoring.md)",
 "gates[].require": "required: an expression over train.*, val.*, best.*, baseline.*, epoch", "gates[].name": "default: gate_<index>",
 "gates[].at_epoch": "evaluate at this epoch (counting from 1)", "gates[].every_epoch": "evaluate at every epoch (one of the two is required)",
 "gates[].on_fail": "stop: end the run `stopped` (exit 0, last.pt saved); warn: record and go on",
 "baseline": "a run (id, prefix, name, path) for `baseline.*` in gates; `--baseline RUN` overrides; recorded as the run's id",
 "alerts.command": "shell command run with the alert as JSON on stdin and RUNLAB_ALERT_EVENT, RUNLAB_RUN_ID, RUNLAB_RUN_STATUS, RUNLAB_RUN_DIR, RUNLAB_GATE set",
 "alerts.webhook": "http(s) URL that receives the alert as a JSON POST", "alerts.on": "which events alert", "alerts.timeout": "seconds per attempt; a failure is an on_warning event",
 "sinks": f"mirror the run to these (docs/mirrors.md): {names(SINKS)}, a plugin's (`runlab.sinks`) or `pkg.mod:SinkClass`; `--sink NAME` adds one",
 "launcher": f"`runlab sweep` / `tune`: `name` ({names(LAUNCHERS)}, a plugin's or `pkg.mod:Launcher`) and that launcher's options (docs/sweeps.md); `--launcher`, `--launcher-opt key=value` win",
 "tensorboard.log_dir": "default: `<run dir>/tensorboard`; else `<log_dir>/<run id>`", "tensorboard.timeout": "seconds the run's end waits for this mirror",
 "wandb.project": "default: $WANDB_PROJECT, else runlab", "wandb.entity": "default: $WANDB_ENTITY, else your W&B default", "wandb.group": "default: the run's sweep or study",
 "wandb.tags": "added to the run's tags (as key=value)", "wandb.mode": "default: $WANDB_MODE, else online", "wandb.run_name": "default: the run's name",
 "wandb.dir": "where `wandb/` goes; default: $WANDB_DIR, else the working directory", "wandb.artifacts": "files in the run's `runlab-run` artifact ([] for none)",
 "wandb.timeout": "seconds the run's end waits for this mirror",
 "mlflow.tracking_uri": "default: $MLFLOW_TRACKING_URI, else MLflow's default (sqlite:///mlflow.db)", "mlflow.experiment": "default: $MLFLOW_EXPERIMENT_NAME, else runlab",
 "mlflow.artifact_location": "for an experiment runlab creates", "mlflow.artifacts": "files logged as artifacts ([] for none)", "mlflow.timeout": "seconds the run's end waits for this mirror",
 "task": "", "loop": f"{names(LOOPS)}, a plugin's (`runlab.loops`), or `pkg.mod:fn` called as fn(cfg, run) (docs/extending.md)", "evaluate": f"evaluators: {names(EVALUATORS)}, a plugin's (`runlab.evaluators`) or `pkg.mod:fn`; default: the task's own",
}
def esc(s):
    return s.replace("|", "\\|")
SYMBOLS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
def bounds_text(meta):
    return "".join(f", {SYMBOLS[k]} {v:g}" for k, v in meta.items() if k in SYMBOLS)
def default_text(d):
    return "null" if d is None else repr(d).replace("'", "")
out = ["# Config reference", "",
 "runlab's own blocks, checked before any training (types, allowed values and bounds such as",
 "`>= 1`, numbers finite; an unknown key gets a",
 "\"did you mean\"). Every key has a default, so `data`, `task`, `model` and `trainer` in four lines",
 "make a complete run. Keys outside these blocks are yours: they are kept, composed and",
 "interpolated, but not checked. This page is generated from `src/runlab/config/schema.py`, and a",
 "test checks that it lists every key.", ""]
def walk(cls, prefix, rows):
    h = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        if dataclasses.is_dataclass(h[f.name]):
            rows.append((key, "block", "", "the keys below"))
            walk(h[f.name], key + ".", rows)
            continue
        d = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        rows.append((key, tname(h[f.name]) + bounds_text(f.metadata), default_text(d), notes.get(key, "")))
for f in dataclasses.fields(RunlabConfig):
    h = hints[f.name]
    out.append(f"## `{f.name}`\n")
    out.append("| key | type | default | notes |\n| --- | --- | --- | --- |")
    rows = []
    if dataclasses.is_dataclass(h):
        walk(h, f.name + ".", rows)
    elif typing.get_origin(h) is list and dataclasses.is_dataclass(typing.get_args(h)[0]):
        item = typing.get_args(h)[0]
        rows.append((f.name, f"list of {item.__name__[:-6].lower()} blocks", "[]", notes.get(f.name, "")))
        walk(item, f.name + "[].", rows)
    else:
        d = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        rows.append((f.name, tname(h), default_text(d), notes.get(f.name, "")))
    for k, t, d, n in rows:
        out.append("| `%s` | %s | %s | %s |" % (k, esc(t), esc(d), n))
    out.append("")
out.append("`model` and `optim` also accept `{_target_: package.module.Class, ...kwargs}`.")
open("docs/config.md", "w").write("\n".join(out) + "\n")
