"""Sweep and tune overheads: the --jobs 2 speed-up for CPU-bound runs, and runlab tune's
per-trial overhead beyond the training itself, against plain Optuna on a trivial objective.

    python benchmarks/bench_tune.py [--trials 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "examples" / "quickstart.yaml")


def runlab_cli(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "runlab", *args], check=True, capture_output=True, text=True
    ).stdout


def sweep_seconds(jobs: int, root: Path) -> float:
    t0 = time.perf_counter()
    runlab_cli(
        "sweep",
        QUICK,
        "optim.lr=0.001,0.002,0.003,0.004",
        "trainer.epochs=8",
        "data.n_samples=60000",
        "model.hidden=[256,256]",
        "--jobs",
        str(jobs),
        "-o",
        str(root),
        "-f",
        "json",
    )
    return time.perf_counter() - t0


def tune_overhead(trials: int, root: Path, in_process: bool = False) -> tuple[float, float]:
    """(wall seconds per trial, of which training seconds per trial) for a trivial run."""
    t0 = time.perf_counter()
    out = runlab_cli(
        "tune",
        QUICK,
        "optim.lr=interval(0.001, 0.01)",
        "trainer.epochs=1",
        "data.n_samples=256",
        "--trials",
        str(trials),
        "--pruner",
        "none",
        *(["--in-process"] if in_process else []),
        "-o",
        str(root),
        "-f",
        "json",
    )
    wall = (time.perf_counter() - t0) / trials
    runs = [
        json.loads((root / t["run_id"] / "metrics.json").read_text())["duration_seconds"]
        for t in json.loads(out)["trials"]
    ]
    return wall, statistics.mean(runs)


def plain_optuna(trials: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        study = optuna.create_study(storage=f"sqlite:///{tmp}/o.db")
        t0 = time.perf_counter()
        study.optimize(lambda t: (t.suggest_float("x", 0, 1) - 0.5) ** 2, n_trials=trials)
        return (time.perf_counter() - t0) / trials


def ray_tune(trials: int) -> float | None:
    """Ray Tune on the same trivial objective (function trainable, local 2-CPU Ray)."""
    try:
        import ray
        from ray import tune
    except ImportError:
        return None
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tuner = tune.Tuner(
                lambda config: {"loss": (config["x"] - 0.5) ** 2},
                param_space={"x": tune.uniform(0, 1)},
                tune_config=tune.TuneConfig(num_samples=trials, metric="loss", mode="min"),
                run_config=tune.RunConfig(verbose=0, storage_path=tmp),
            )
            t0 = time.perf_counter()
            tuner.fit()
            return (time.perf_counter() - t0) / trials
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {os.cpu_count()} cores\n")
    with tempfile.TemporaryDirectory() as tmp:
        one = sweep_seconds(1, Path(tmp) / "a")
        two = sweep_seconds(2, Path(tmp) / "b")
        wall, train = tune_overhead(args.trials, Path(tmp) / "c")
        wall_in, train_in = tune_overhead(args.trials, Path(tmp) / "d", in_process=True)
    plain = plain_optuna(100)
    ray_seconds = ray_tune(100)
    print("| measurement | value |")
    print("| --- | ---: |")
    print(f"| sweep of 4 CPU-bound runs, --jobs 1 | {one:.1f} s |")
    print(f"| same, --jobs 2 | {two:.1f} s (speed-up {one / two:.2f}x) |")
    print(f"| runlab tune, wall time per trivial trial (fresh process) | {wall:.2f} s |")
    print(f"| of which the run's own duration (training, evaluation, files) | {train:.2f} s |")
    print(f"| overhead per trial beyond the run | {wall - train:.2f} s |")
    print(f"| runlab tune --in-process, wall time per trivial trial | {wall_in:.3f} s |")
    print(f"| overhead per in-process trial beyond the run | {wall_in - train_in:.3f} s |")
    print(f"| plain Optuna, trivial objective, SQLite storage, per trial | {plain * 1000:.1f} ms |")
    if ray_seconds is not None:
        print(
            f"| Ray Tune, trivial objective, per trial (100 trials) | {ray_seconds * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
