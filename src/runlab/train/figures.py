"""The figures a run writes at its end (figures/*.png), by family, chosen by the config's
``figures`` block: a preset (``none``, ``minimal``, ``standard``, ``full``) and per-family
switches that override it (``figures.lr=true``).

Families: ``losses`` (train and val loss per epoch), ``metrics`` (each validation metric per
epoch), ``lr`` (the learning rate per epoch), ``steps`` (the logged step losses), ``ic`` (the
test split's cumulative IC by date, ranking), ``backtest`` (equity and drawdown, written by
``runlab backtest``).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from typing import Any

FAMILIES = ("losses", "metrics", "lr", "steps", "ic", "backtest")
PRESETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "minimal": ("losses",),
    "standard": ("losses", "metrics", "ic", "backtest"),
    "full": FAMILIES,
}


def wanted(cfg: Mapping[str, Any] | None) -> set[str]:
    """The families a config asks for (the standard preset without a ``figures`` block)."""
    block = (cfg or {}).get("figures") or {}
    chosen = set(PRESETS[block.get("preset") or "standard"])
    for family in FAMILIES:
        switch = block.get(family)
        if switch is True:
            chosen.add(family)
        elif switch is False:
            chosen.discard(family)
    return chosen


def _nan(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else float("nan")


def _pyplot(run: Any) -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        run.event(
            "on_warning",
            message="figures skipped: pip install matplotlib (runlab[torch] includes it)",
        )
        return None
    return plt


def epoch_figures(run: Any, history: list[dict[str, Any]], cfg: Mapping[str, Any]) -> list[str]:
    """Write the families ``cfg`` asks for from the epoch ``history`` (``{"epoch": 1,
    "train.loss": ..., "val.<metric>": ...}`` rows) and the run's files; the names written."""
    families = wanted(cfg) - {"backtest"}
    if not history or not families:
        return []
    plt = _pyplot(run)
    if plt is None:
        return []
    dpi = int(((cfg.get("figures") or {}).get("dpi")) or 100)
    written = []
    for family in sorted(families):
        fig = _FAMILY[family](plt, run, history)
        if fig is not None:
            fig.tight_layout()
            fig.savefig(run.figure_path(family), dpi=dpi)
            plt.close(fig)
            written.append(family)
    return written


def _losses(plt: Any, run: Any, history: list[dict[str, Any]]) -> Any:
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("train.loss", "val.loss"):
        ax.plot(epochs, [_nan(h.get(key)) for h in history], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return fig


def _metrics(plt: Any, run: Any, history: list[dict[str, Any]]) -> Any:
    keys = [k for k in history[-1] if k.startswith("val.") and k != "val.loss"]
    if not keys:
        return None
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 2.2 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        ax.plot(epochs, [_nan(h.get(key)) for h in history], marker="o")
        ax.set_ylabel(key)
    axes[-1, 0].set_xlabel("epoch")
    return fig


def _lr(plt: Any, run: Any, history: list[dict[str, Any]]) -> Any:
    from runlab.tracking.scalars import read_scalars

    rows = [r for r in read_scalars(run.dir / "scalars.csv") if r.get("split") == "train"]
    points = [(r["epoch"], r["lr"]) for r in rows if isinstance(r.get("lr"), (int, float))]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(*zip(*points, strict=True), marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    return fig


def _steps(plt: Any, run: Any, history: list[dict[str, Any]]) -> Any:
    from runlab._io import read_jsonl

    run.flush()
    rows = [r for r in read_jsonl(run.dir / "steps.jsonl") if isinstance(r.get("loss"), float)]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("train loss")
    return fig


def _ic(plt: Any, run: Any, history: list[dict[str, Any]]) -> Any:
    path = run.artifact_path("test_ic_by_date.csv")
    if not path.exists():
        return None
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    fig, ax = plt.subplots(figsize=(6, 3))
    for key in ("ic", "rank_ic"):
        total, curve = 0.0, []
        for row in rows:
            value = _nan(float(row[key])) if row[key] not in ("", "nan") else 0.0
            total += value
            curve.append(total)
        ax.plot(range(len(curve)), curve, label=f"cumulative {key}")
    ax.set_xlabel("test date")
    ax.legend()
    return fig


_FAMILY = {"losses": _losses, "metrics": _metrics, "lr": _lr, "steps": _steps, "ic": _ic}
