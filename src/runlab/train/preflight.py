"""Preflight stages: the whole path of a run in seconds, before the real run spends the GPU
(:func:`runlab.train.session.preflight` runs the config's loop's own).

Stages: data (load, shapes, NaN counts, split sizes), model (build, parameter count), train
(2 batches forward, backward, optimizer step), validate (2 batches through the loss and every
evaluator; the monitored metrics exist), checkpoint (save, reload with weights_only=True,
compare). A failure names its stage.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from runlab.errors import ConfigError, RunlabError
from runlab.train.data import Dataset, load_dataset
from runlab.train.handover import hand_over

T = TypeVar("T")


class PreflightError(RunlabError):
    """A preflight stage failed; the message names the stage."""


def stage(report: dict[str, Any], name: str, fn: Callable[[], T]) -> T:
    """Run one preflight stage: its time in the report, its failure named after it."""
    t0 = time.perf_counter()
    try:
        result = fn()
    except ConfigError as err:
        raise ConfigError(f"preflight failed at stage '{name}': {err}") from err
    except Exception as err:
        raise PreflightError(
            f"preflight failed at stage '{name}': {type(err).__name__}: {err}"
        ) from err
    report["stages"][name] = {"seconds": round(time.perf_counter() - t0, 3)}
    return result


def preflight_supervised(cfg: dict[str, Any], ctx: Any, report: dict[str, Any]) -> Dataset:
    from runlab.train.supervised import SupervisedTrainer

    data = _data_stage(report, cfg, ctx.seed)
    trainer = _model_stage(report, lambda: SupervisedTrainer(cfg, data, ctx.device, ctx.seed))
    built = trainer.snapshot()
    _init_stage(report, ctx, trainer.model)
    report["warnings"] = trainer.warnings
    stage(report, "train", lambda: float(trainer.train_batches(2)))
    val = stage(report, "validate", lambda: _validate(trainer, cfg))
    report["validate"] = {k: v for k, v in val.items() if not k.startswith("_")}
    produced = {"train.loss"} | {f"val.{k}" for k in report["validate"]}
    _gates_stage(report, cfg, produced, ctx.baseline)
    stage(report, "checkpoint", lambda: _checkpoint_round_trip(trainer))
    trainer.rewind(built)  # the run trains this one, as built, instead of a second build
    hand_over(trainer)
    return data


def check_resume(
    cfg: dict[str, Any], last: Path, device: torch.device, seed: int, data: Dataset | None
) -> Dataset:
    """The run's checkpoint loads into the trainer this config builds, before the run is
    touched: an override that changes the model (``model.hidden=[999]``) is a one-line error,
    not a finished run turned ``failed``. Returns the dataset (loaded here if not yet)."""
    from runlab.train.supervised import SupervisedTrainer

    loaded = data if data is not None else load_dataset(cfg["data"], cfg["task"], seed)
    check_restore(last, lambda: SupervisedTrainer(cfg, loaded, device, seed))
    return loaded


def check_restore(last: Path, build: Callable[[], Any]) -> None:
    """``build()`` a trainer and restore ``last`` into it: ConfigError when it does not fit."""
    try:
        build().restore(last)
    except Exception as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()][:2]
        raise ConfigError(
            f"--resume: {last.parent.parent.name}'s checkpoint does not fit this config "
            f"({type(err).__name__}: {' '.join(lines)[:300]}); drop the overrides that change "
            "the model or the data"
        ) from err


def _data_stage(report: dict[str, Any], cfg: dict[str, Any], seed: int) -> Dataset:
    data = stage(report, "data", lambda: load_dataset(cfg["data"], cfg["task"], seed))
    report["data"] = data.describe()
    return data


def _model_stage(report: dict[str, Any], build: Callable[[], T]) -> T:
    """Build the trainer (and so the model); report the model's class and size."""
    trainer = stage(report, "model", build)
    model = trainer.model  # type: ignore[attr-defined]
    report["model"] = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "class": type(model).__name__,
    }
    return trainer


def _init_stage(report: dict[str, Any], ctx: Any, model: Any) -> None:
    """trainer.init_from's weights load into the model this config builds."""
    if ctx.init_from is not None:
        stage(report, "init_from", lambda: ctx.init_weights(model))


def _gates_stage(
    report: dict[str, Any], cfg: dict[str, Any], produced: set[str], baseline: Any
) -> None:
    """Every metric a gate names is produced, and the baseline has what the gates use."""
    from runlab.monitor.gates import check_gates, gates_from_config

    gates = gates_from_config(cfg)
    if gates:
        epochs = int(cfg["trainer"]["epochs"])
        stage(report, "gates", lambda: check_gates(gates, produced, baseline, epochs))


def preflight_episodic(cfg: dict[str, Any], ctx: Any, report: dict[str, Any]) -> Dataset:
    device, seed, baseline = ctx.device, ctx.seed, ctx.baseline
    from runlab.train.episodic import EpisodicTrainer

    data = _data_stage(report, cfg, seed)
    trainer = _model_stage(report, lambda: EpisodicTrainer(cfg, data, device, seed))
    built = trainer.snapshot()
    _init_stage(report, ctx, trainer.model)
    report["warnings"] = trainer.warnings
    stage(report, "train", lambda: [trainer.step() for _ in range(2)])
    report["validate"] = stage(report, "validate", lambda: trainer.evaluate("val"))
    produced = {"train.loss", "train.reward", "train.turnover"}
    _gates_stage(report, cfg, produced | {f"val.{k}" for k in report["validate"]}, baseline)

    def round_trip() -> None:
        with tempfile.TemporaryDirectory(prefix="runlab-preflight-") as tmp:
            trainer.save(Path(tmp) / "check.pt")
            torch.load(Path(tmp) / "check.pt", map_location="cpu", weights_only=True)

    stage(report, "checkpoint", round_trip)
    trainer.rewind(built)
    hand_over(trainer)
    return data


def _validate(trainer: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    val: dict[str, Any] = trainer.evaluate("val", max_batches=2)
    produced = {"train.loss"} | {f"val.{k}" for k in val if not k.startswith("_")}
    wanted = {"trainer.monitor": cfg["trainer"]["monitor"]}
    if cfg["trainer"]["early_stopping"]["monitor"]:
        wanted["trainer.early_stopping.monitor"] = cfg["trainer"]["early_stopping"]["monitor"]
    for key, name in wanted.items():
        if name not in produced:
            from runlab._imports import did_you_mean

            raise ConfigError(
                f"{key} {name!r} is not produced by this config{did_you_mean(name, produced)}; "
                f"available: {', '.join(sorted(produced))}"
            )
    return val


def _checkpoint_round_trip(trainer: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="runlab-preflight-") as tmp:
        path = Path(tmp) / "check.pt"
        trainer.save(path)
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        for name, tensor in trainer.model.state_dict().items():
            if not torch.equal(ckpt["model"][name].to(tensor.device), tensor):
                raise RuntimeError(f"checkpoint round trip changed {name}")


def format_report(report: dict[str, Any]) -> str:
    lines = [f"preflight passed in {report['seconds']:.2f}s on {report['device']}"]
    if "data" in report:
        d = report["data"]
        shapes = ", ".join(f"{s} {d[s]}" for s in ("train", "val", "test") if s in d)
        lines.append(f"  data        {d['layout']}, {d['features']} features: {shapes}")
        if d.get("nan_replaced"):
            lines.append(f"              {d['nan_replaced']} non-finite inputs replaced")
        if d.get("feature_names"):
            lines.append(f"  features    {_listed(d['feature_names'])}")
        if d.get("targets"):
            lines.append(f"  targets     {_listed(d['targets'])}")
    if "model" in report:
        m = report["model"]
        lines.append(f"  model       {m['class']}, {m['parameters']:,} parameters")
    if "validate" in report:
        shown = "  ".join(
            f"{k} {v:.4g}" for k, v in report["validate"].items() if isinstance(v, float)
        )
        lines.append(f"  validate    {shown}")
    for name, info in report["stages"].items():
        lines.append(f"  {name:<11} ok  {info['seconds']:.3f}s")
    lines.extend(f"  warning     {w}" for w in report.get("warnings", []))
    lines.extend(f"  look-ahead  {w}" for w in (report.get("data") or {}).get("lookahead", []))
    return "\n".join(lines)


def _listed(names: list[str], shown: int = 12) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
