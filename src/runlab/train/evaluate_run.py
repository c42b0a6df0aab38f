"""Evaluate a finished run's model after the fact: ``runlab backtest``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from runlab.config.validate import resolve
from runlab.errors import ConfigError
from runlab.finance.backtest import BacktestResult, backtest
from runlab.tracking.record import RunRecord
from runlab.train.data import apply_scaler, load_dataset
from runlab.train.load import load_model, snapshot

# the portfolio settings a backtest of weights (not scores) takes
WEIGHT_SETTINGS = (
    "transaction_cost_bps",
    "leverage_limit",
    "borrowing_cost",
    "initial_value",
    "periods_per_year",
)


def pick_checkpoint(record: RunRecord, given: str | None) -> tuple[str, str | None]:
    """What ``runlab backtest --checkpoint`` names (:func:`runlab.train.load.snapshot`)."""
    return snapshot(record.path, record.id, given, "--checkpoint", doing="backtesting")


def predict_panel(
    record: RunRecord, data: Path | None, split: str, which: str = "best", target: str | None = None
) -> tuple[np.ndarray, np.ndarray, Any, Any, dict[str, Any]]:
    """(scores, next-period returns, dates, assets, config) for a panel split, NaN where an
    asset is missing; inputs scaled with the scaler saved in checkpoint ``which``. A run with
    several targets is scored on ``target`` (default: the first)."""
    cfg = resolve(record.config)
    if data is not None:
        if not Path(data).exists():
            raise ConfigError(f"--data {str(data)!r} not found")
        cfg["data"]["source"] = str(data)
    loaded = load_model(record.path, which=which)
    ds = load_dataset({**cfg["data"], "scaler": "none"}, cfg["task"])
    if not ds.is_panel:
        raise ConfigError(
            f"run {record.id} was trained on {cfg['data']['source']!r}, not a panel of dates x "
            "assets; pass one with --data"
        )
    if split not in ds.splits:
        raise ConfigError(f"the data has no {split!r} split (it has {', '.join(ds.splits)})")
    part = ds.splits[split]
    x = torch.as_tensor(apply_scaler(loaded.scaler, _trained_columns(record, loaded, ds, part.x)))
    with torch.no_grad():
        out = loaded.model(x).float()
    j = _target_index(ds, target)
    if part.y.ndim == 3:
        scores, realised = out[..., j].numpy(), part.y[..., j]
    else:
        scores = out.squeeze(-1).numpy() if out.shape[-1] == 1 else out[..., -1].numpy()
        realised = part.y
    assert part.mask is not None
    scores = np.where(part.mask, scores, np.nan)
    returns = np.where(part.mask, realised, np.nan)
    return scores, returns, ds.dates.get(split), ds.assets, cfg


def _target_index(ds: Any, target: str | None) -> int:
    names = ds.target_names or []
    if target is None:
        return 0
    if len(names) < 2 or target not in names:
        have = ", ".join(names) if len(names) > 1 else "one target"
        raise ConfigError(f"--target {target!r}: the data has {have}")
    return int(names.index(target))


def _trained_columns(record: RunRecord, loaded: Any, ds: Any, x: np.ndarray) -> np.ndarray:
    """``x``'s feature columns in the order the model was trained on; a panel that lacks one
    is an error naming what was expected and what was found, never numbers from the wrong
    inputs."""
    found = list(ds.feature_names)
    expected = loaded.feature_names
    if expected is None:  # a checkpoint from before feature names were saved: count only
        center = loaded.scaler.get("center")
        if center is not None and len(center) != len(found):
            raise ConfigError(
                f"the data has {len(found)} feature columns ({_names(found)}) but run "
                f"{record.id} was trained on {len(center)}"
            )
        return x
    missing = [c for c in expected if c not in found]
    if missing:
        raise ConfigError(
            f"the data lacks feature column(s) {_names(missing)} that run {record.id} was "
            f"trained on: expected {len(expected)} ({_names(expected)}), found {len(found)} "
            f"({_names(found)})"
        )
    return x[..., [found.index(c) for c in expected]]


def _names(columns: list[str], shown: int = 8) -> str:
    more = f", ... {len(columns) - shown} more" if len(columns) > shown else ""
    return ", ".join(columns[:shown]) + more


def backtest_run(
    record: RunRecord,
    data: Path | None,
    split: str,
    overrides: dict[str, Any],
    which: str = "best",
    target: str | None = None,
) -> tuple[BacktestResult, Path]:
    """Backtest checkpoint ``which`` on ``split``: artifacts/backtest/<split>/ for best.pt,
    artifacts/backtest/<split>@<which>/ for another."""
    from runlab.train.figures import wanted

    scores, returns, dates, assets, cfg = predict_panel(record, data, split, which, target)
    settings = {**cfg["portfolio"], **overrides}
    if cfg["loop"] == "episodic":  # the outputs are allocations once transformed
        from runlab.train.episodic import to_allocations

        mask = ~np.isnan(scores)
        weights = to_allocations(
            torch.as_tensor(np.nan_to_num(scores)),
            torch.as_tensor(mask),
            cfg["episodic"]["transform"],
        ).numpy()
        result = backtest(weights, returns, **{k: settings[k] for k in WEIGHT_SETTINGS})
    else:
        result = backtest(scores, returns, scores=True, **settings)
    result.dates, result.assets = dates, assets
    result.settings["checkpoint"] = which
    folder = split if which == "best" else f"{split}@{which}"
    if target is not None:
        result.settings["target"] = target
        folder = f"{folder}-{target}"
    out = result.write(
        record.path / "artifacts" / "backtest" / folder, figures="backtest" in wanted(cfg)
    )
    return result, out
