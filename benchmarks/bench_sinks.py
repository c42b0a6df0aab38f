"""Mirrors: does mirroring to TensorBoard, W&B (offline) and MLflow (SQLite store) slow training?

1. Trainer throughput (samples/s of training steps, as runlab records it) with no sink, each
   sink alone, and all three, configurations interleaved in every repeat; medians and ratios.
   Two numbers per run: over the whole run (the sinks' start-up included: a fixed cost, paid
   in the first epoch) and the steady state (median of the epochs after the first).
2. What one logged step costs the training thread: runlab's ``run.log`` without and with the
   three sinks, against calling each tool directly in the loop (MlflowClient.log_metric,
   wandb.log offline, TensorBoard's SummaryWriter.add_scalar).

    python benchmarks/bench_sinks.py [--repeats 5] [--epochs 4] [--configs "no sink,all three"]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import runlab
from runlab.config import load_config
from runlab.train.data import load_dataset
from runlab.train.fit import fit

ROWS, FEATURES, BATCH = 100_000, 64, 512
CONFIGS = {
    "no sink": [],
    "tensorboard": ["tensorboard"],
    "wandb (offline)": ["wandb"],
    "mlflow (SQLite)": ["mlflow"],
    "all three": ["tensorboard", "wandb", "mlflow"],
}


def make_data(tmp: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS + 2000, FEATURES), dtype=np.float32)
    y = (np.sin(x[:, 0]) + x[:, 1:4].sum(1) * 0.3).astype(np.float32)
    path = tmp / "data.npz"
    np.savez(path, X_train=x[:ROWS], y_train=y[:ROWS], X_val=x[ROWS:], y_val=y[ROWS:])
    return path


def train(cfg: dict[str, Any], data: Any, sinks: list[str], tmp: Path) -> tuple[float, float]:
    """(samples/s over the whole run, median samples/s of the epochs after the first)."""
    cfg = {**cfg, "sinks": sinks}
    with runlab.start_run(
        config=cfg,
        root=tmp / "runs",
        name="bench",
        capture_stdout=False,
        index=False,
        sinks=sinks,
        sink_options={"mlflow": {"tracking_uri": f"sqlite:///{tmp}/mlflow.db"}},
    ) as run:
        fit(cfg, run, data, torch.device("cpu"), seed=0, show_progress=False)
    warnings = [e for e in runlab.RunRecord(run.dir).events("on_warning") if "sink" in e]
    if warnings:
        raise SystemExit(f"a sink failed: {warnings[0]['message']}")
    epochs = [
        r["samples_per_s"] for r in runlab.RunRecord(run.dir).scalars() if r["split"] == "train"
    ]
    return float(run.summary["samples_per_sec"]), statistics.median(epochs[1:] or epochs)


def caller_cost(tmp: Path, n: int) -> dict[str, float]:
    """Microseconds per logged step (3 scalars) on the caller's thread."""
    import wandb
    from mlflow import MlflowClient
    from torch.utils.tensorboard import SummaryWriter

    out: dict[str, float] = {}

    def timed(name: str, log: Any) -> None:
        start = time.perf_counter()
        for i in range(n):
            log(i, {"loss": 1.0 / (i + 1), "grad_norm": 0.5, "lr": 1e-3})
        out[name] = (time.perf_counter() - start) / n * 1e6

    for label, sinks in (
        ("runlab run.log, no sink", []),
        ("runlab run.log, 3 sinks", list(CONFIGS["all three"])),
    ):
        with runlab.start_run(
            {},
            root=tmp / "runs",
            capture_stdout=False,
            index=False,
            sinks=sinks,
            sink_options={"mlflow": {"tracking_uri": f"sqlite:///{tmp}/mlflow.db"}},
        ) as run:
            timed(label, lambda i, m: run.log(m, step=i))
    client = MlflowClient(f"sqlite:///{tmp}/direct.db")
    ml_run = client.create_run(client.create_experiment("direct"))
    timed(
        "MlflowClient.log_metric x3",
        lambda i, m: [client.log_metric(ml_run.info.run_id, k, v, step=i) for k, v in m.items()],
    )
    client.set_terminated(ml_run.info.run_id)
    wb = wandb.init(
        project="bench",
        mode="offline",
        dir=str(tmp),
        reinit="create_new",
        settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
    )
    timed("wandb.log (offline)", lambda i, m: wb.log(m, step=i))
    wb.finish()
    writer = SummaryWriter(str(tmp / "tb"))
    timed(
        "SummaryWriter.add_scalar x3",
        lambda i, m: [writer.add_scalar(k, v, i) for k, v in m.items()],
    )
    writer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated labels")
    args = parser.parse_args()
    configs = {k: CONFIGS[k] for k in args.configs.split(",")}
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["WANDB_DIR"] = str(tmp)
        os.chdir(tmp)  # MLflow's default artifact root
        cfg_path = tmp / "bench.yaml"
        cfg_path.write_text(
            f"data: {{source: {make_data(tmp)}, scaler: none}}\ntask: regression\n"
            "model: {name: mlp, hidden: [256, 256]}\n"
            f"trainer: {{epochs: {args.epochs}, batch_size: {BATCH}, log_every: 10}}\n"
        )
        cfg = load_config(cfg_path)
        data = load_dataset(cfg["data"], "regression")
        train(cfg, data, CONFIGS["all three"], tmp)  # warm-up: imports, MLflow schema
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in configs}
        for r in range(args.repeats):
            order = list(configs) if r % 2 == 0 else list(reversed(configs))
            for label in order:
                results[label].append(train(cfg, data, configs[label], tmp))
            print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr)
        costs = caller_cost(tmp, args.calls) if args.calls else {}

    base = [statistics.median(v[i] for v in results["no sink"]) for i in (0, 1)]
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"MLP {FEATURES}-256-256-1, {ROWS:,} rows, batch {BATCH}, {args.epochs} epochs, "
        f"step log every 10 steps; medians of {args.repeats}\n"
    )
    print(
        "| sinks | whole run: samples/s | min - max | vs no sink "
        "| steady state: samples/s | vs no sink |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, values in results.items():
        whole, steady = ([v[i] for v in values] for i in (0, 1))
        med, med_steady = statistics.median(whole), statistics.median(steady)
        print(
            f"| {label} | {med:,.0f} | {min(whole):,.0f} - {max(whole):,.0f} | "
            f"{(med / base[0] - 1) * 100:+.1f}% | {med_steady:,.0f} | "
            f"{(med_steady / base[1] - 1) * 100:+.1f}% |"
        )
    print("\n| one logged step (3 scalars), caller's thread | us per call |")
    print("| --- | ---: |")
    for label, us in costs.items():
        print(f"| {label} | {us:,.1f} |")


if __name__ == "__main__":
    main()
