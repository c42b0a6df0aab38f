"""Per-step logging cost: runlab's run.log against a plain buffered JSONL append, MLflow,
TensorBoard and W&B (offline), on the same dicts of 10 scalars, in one process.

    python benchmarks/bench_logging.py [--steps 20000] [--repeats 7] [--quick]

Prints a Markdown table of median microseconds per step (and the ratio to the plain append).
The slow competitors log fewer steps (their per-step cost does not depend on the count); each
is skipped with a note when its package is not installed (`make bench` installs them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

KEYS = [f"metric_{i}" for i in range(10)]


def workload(steps: int) -> list[dict[str, float]]:
    return [{k: (i * 0.001 + j) / (j + 1) for j, k in enumerate(KEYS)} for i in range(steps)]


def bench_plain(rows: list[dict[str, float]], tmp: Path) -> float:
    with open(tmp / "plain.jsonl", "w") as fh:
        t0 = time.perf_counter()
        for row in rows:
            fh.write(json.dumps(row) + "\n")
        return time.perf_counter() - t0


def bench_runlab(rows: list[dict[str, float]], tmp: Path) -> float:
    import runlab

    with runlab.start_run(root=tmp / "runs", capture_stdout=False, index=False) as run:
        t0 = time.perf_counter()
        for i, row in enumerate(rows):
            run.log(row, step=i)
        return time.perf_counter() - t0


def bench_mlflow(store: str) -> Callable[[list[dict[str, float]], Path], float]:
    def run(rows: list[dict[str, float]], tmp: Path) -> float:
        import mlflow

        if store == "sqlite":
            uri = f"sqlite:///{tmp / 'mlflow.db'}"
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
            uri = (tmp / "mlruns").as_uri()
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run():
            t0 = time.perf_counter()
            for i, row in enumerate(rows):
                mlflow.log_metrics(row, step=i)
            return time.perf_counter() - t0

    return run


def bench_tensorboard(rows: list[dict[str, float]], tmp: Path) -> float:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp / "tb"))
    t0 = time.perf_counter()
    for i, row in enumerate(rows):
        for k, v in row.items():
            writer.add_scalar(k, v, i)
    elapsed = time.perf_counter() - t0
    writer.close()
    return elapsed


def bench_wandb(rows: list[dict[str, float]], tmp: Path) -> float:
    import wandb

    run = wandb.init(
        mode="offline",
        dir=str(tmp),
        project="bench",
        settings=wandb.Settings(silent=True, console="off"),
    )
    t0 = time.perf_counter()
    for i, row in enumerate(rows):
        run.log(row, step=i)
    elapsed = time.perf_counter() - t0
    run.finish()
    return elapsed


def measure(
    fn: Callable[[list[dict[str, float]], Path], float], steps: int, repeats: int
) -> dict[str, Any]:
    rows = workload(steps)
    per_step = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            per_step.append(fn(rows, Path(tmp)) / steps * 1e6)
    return {
        "steps": steps,
        "repeats": repeats,
        "median_us": statistics.median(per_step),
        "min_us": min(per_step),
        "max_us": max(per_step),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer steps for competitors")
    args = parser.parse_args()
    slow = 0.05 if args.quick else 0.1
    cases: list[tuple[str, Callable[..., float], int, int, str]] = [
        (
            "plain JSONL append (json.dumps + buffered write)",
            bench_plain,
            args.steps,
            args.repeats,
            "",
        ),
        ("runlab run.log", bench_runlab, args.steps, args.repeats, "runlab"),
        ("W&B offline run.log", bench_wandb, int(args.steps * slow * 2.5), 3, "wandb"),
        (
            "TensorBoard SummaryWriter.add_scalar x10",
            bench_tensorboard,
            int(args.steps * slow),
            3,
            "tensorboard",
        ),
        (
            "MLflow log_metrics (file store)",
            bench_mlflow("file"),
            int(args.steps * slow / 2),
            3,
            "mlflow",
        ),
        (
            "MLflow log_metrics (SQLite store)",
            bench_mlflow("sqlite"),
            int(args.steps * slow / 4),
            3,
            "mlflow",
        ),
    ]
    results = {}
    for label, fn, steps, repeats, module in cases:
        if module:
            try:
                __import__(module)
            except ImportError:
                print(f"skipped {label}: {module} not installed (make bench installs it)")
                continue
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            results[label] = measure(fn, steps, repeats)
    base = results["plain JSONL append (json.dumps + buffered write)"]["median_us"]
    print(
        f"\nmachine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}\n"
    )
    print("| logger | steps x repeats | median µs/step | min-max µs | x plain |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, r in results.items():
        print(
            f"| {label} | {r['steps']:,} x {r['repeats']} | {r['median_us']:.1f} | "
            f"{r['min_us']:.1f}-{r['max_us']:.1f} | {r['median_us'] / base:.2f} |"
        )


if __name__ == "__main__":
    main()
