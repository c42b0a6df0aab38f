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
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
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
    "train.loss": ..., "val.<metric>": ...}`` rows) and the run's files; the names written.
    Drawn by the painter process when this process started one (:func:`start_painter`)."""
    global _PAINTER
    painter, _PAINTER = _PAINTER, None
    families = wanted(cfg) - {"backtest"}
    if not history or not families:
        if painter is not None:
            painter.close()
        return []
    if painter is not None:
        drawn = painter.draw(run, history, cfg)
        if drawn is not None:
            return drawn
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


# ---------------------------------------------------------------------------- the painter
class Painter:
    """A child process that imports matplotlib (half a second) while ``runlab run`` imports
    torch and trains, then draws the run's epoch figures at its end: on two cores the import
    costs the run nothing. It waits on its stdin; if this process ends first, it sees the
    pipe close and exits. Any failure (it died, it timed out) and the figures are drawn here
    as before."""

    def __init__(self) -> None:
        env = dict(os.environ)
        here = str(Path(__file__).resolve().parents[2])  # where runlab is imported from
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
        self.child = subprocess.Popen(
            [sys.executable, "-m", "runlab.train.figures"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def draw(
        self, run: Any, history: list[dict[str, Any]], cfg: Mapping[str, Any]
    ) -> list[str] | None:
        """The families drawn (the run's warnings recorded), or None: draw them here."""
        run.flush()  # the steps family reads steps.jsonl
        job = {"dir": str(run.dir), "history": history, "figures": cfg.get("figures") or {}}
        try:
            out, _ = self.child.communicate(json.dumps(job).encode(), timeout=600)
            answer = json.loads(out)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.close()
            return None
        if self.child.returncode != 0 or not isinstance(answer, dict):
            return None
        for message in answer.get("warnings") or []:
            run.event("on_warning", message=str(message))
        return list(answer.get("written") or [])

    def close(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()


_PAINTER: Painter | None = None


def start_painter(cfg: Mapping[str, Any]) -> None:
    """Start the painter for this process's one run, when it will draw figures, matplotlib
    is installed and not already imported (a warm trial has it), and RUNLAB_PAINTER is not
    0."""
    global _PAINTER
    if _PAINTER is not None or not (wanted(cfg) - {"backtest"}):
        return
    if os.environ.get("RUNLAB_PAINTER", "1") == "0" or "matplotlib.pyplot" in sys.modules:
        return
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return
    try:
        _PAINTER = Painter()
    except OSError:
        _PAINTER = None


class _RunFiles:
    """What the figure families use of a run, in the painter: its files and its warnings."""

    def __init__(self, folder: str) -> None:
        self.dir = Path(folder)
        self.warnings: list[str] = []

    def figure_path(self, name: str) -> Path:
        path = self.dir / "figures" / (name if Path(name).suffix else f"{name}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def artifact_path(self, name: str) -> Path:
        return self.dir / "artifacts" / name

    def flush(self) -> None:
        """The run flushed its steps before asking."""

    def event(self, kind: str, **fields: Any) -> None:
        self.warnings.append(str(fields.get("message", kind)))


def _paint() -> None:
    """The painter's side: matplotlib first, then one job from stdin, the answer on stdout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # imported now, while the run imports torch

    data = sys.stdin.buffer.read()
    if not data:
        return  # the run ended without figures
    job = json.loads(data)
    run = _RunFiles(job["dir"])
    written = epoch_figures(run, job["history"], {"figures": job["figures"]})
    sys.stdout.write(json.dumps({"written": written, "warnings": run.warnings}))


if __name__ == "__main__":
    _paint()
