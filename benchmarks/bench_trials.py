"""What a trial costs beyond its run (issue 19): runlab tune with runs forked from the warm
server, with fresh processes (RUNLAB_WARM=0) and in process, against `python -c "import
torch"`, plain Optuna and Ray Tune on a trivial objective; and `runlab run` of a one-epoch
quickstart, whole process, against a plain PyTorch script doing the same work.

    python benchmarks/bench_trials.py [--trials 20] [--fresh-trials 5] [--ray-trials 30]

A trial's overhead = wall time per trial minus the run's own duration (its metrics.json
duration_seconds: training, evaluation, figures, files). "Steady" leaves out the first trial,
which also starts the warm server (reported on its own).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench_tune import plain_optuna, ray_tune  # the same references as bench_tune.py

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "examples" / "quickstart.yaml")
TRIVIAL = ["trainer.epochs=1", "data.n_samples=256"]

PLAIN_SCRIPT = """
import sys, numpy as np, torch
from torch import nn
rng = np.random.default_rng(0)
X = rng.normal(size=(256, 16)).astype(np.float32)
y = (X @ rng.normal(size=16) + 0.5 * rng.normal(size=256)).astype(np.float32)[:, None]
n_tr, n_val = 154, 51
Xt, yt = torch.from_numpy(X[:n_tr]), torch.from_numpy(y[:n_tr])
Xv, yv = torch.from_numpy(X[n_tr:n_tr + n_val]), torch.from_numpy(y[n_tr:n_tr + n_val])
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                      nn.Linear(128, 1))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
loss_fn = nn.MSELoss()
for epoch in range(1):
    model.train()
    for i in range(0, n_tr, 128):
        opt.zero_grad()
        loss = loss_fn(model(Xt[i:i + 128]), yt[i:i + 128])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        val = loss_fn(model(Xv), yv).item()
    print(f"epoch {epoch + 1} val_loss {val:.4f}")
torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, sys.argv[1])
"""


def seconds(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def median_of(n: int, cmd: list[str], env: dict[str, str] | None = None) -> float:
    return statistics.median(seconds(cmd, env) for _ in range(n))


def tune(root: Path, trials: int, *extra: str, env: dict[str, str] | None = None) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "runlab", "tune", QUICK, "optim.lr=interval(0.001, 0.01)",
         *TRIVIAL, "--trials", str(trials), "--pruner", "none", *extra,
         "-o", str(root), "-f", "json"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout  # fmt: skip
    wall = time.perf_counter() - t0
    runs = []
    for t in json.loads(out)["trials"]:
        info = json.loads((root / t["run_id"] / "run.json").read_text())
        duration = json.loads((root / t["run_id"] / "metrics.json").read_text())
        runs.append((datetime.fromisoformat(info["created"]), duration["duration_seconds"]))
    runs.sort()
    gaps = [(b[0] - a[0]).total_seconds() - a[1] for a, b in itertools.pairwise(runs)]
    return {
        "per_trial": wall / trials,
        "overhead": wall / trials - statistics.mean(d for _, d in runs),
        "steady": statistics.median(gaps) if gaps else float("nan"),
        "run": statistics.median(d for _, d in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--fresh-trials", type=int, default=5)
    parser.add_argument("--ray-trials", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}")
    torch_s = median_of(args.repeats, [sys.executable, "-c", "import torch"])
    with tempfile.TemporaryDirectory() as tmp:
        warm = tune(Path(tmp) / "warm", args.trials)
        fresh = tune(Path(tmp) / "fresh", args.fresh_trials,
                     env={**os.environ, "RUNLAB_WARM": "0"})  # fmt: skip
        inproc = tune(Path(tmp) / "inproc", args.trials, "--in-process")
        ckpt = str(Path(tmp) / "plain.pt")
        plain_run = median_of(args.repeats, [sys.executable, "-c", PLAIN_SCRIPT, ckpt])
        runlab_run = median_of(
            args.repeats,
            [sys.executable, "-m", "runlab", "run", QUICK, *TRIVIAL, "-o", str(Path(tmp) / "r")],
        )
    optuna_s = plain_optuna(100)
    ray_s = ray_tune(args.ray_trials)
    print(f"\n`python -c 'import torch'`: {torch_s:.2f} s (median of {args.repeats})\n")
    print("| per trial | wall | overhead beyond the run | steady overhead | x import torch |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, m in (
        (f"runlab tune, warm fork ({args.trials} trials)", warm),
        (f"runlab tune, fresh processes ({args.fresh_trials} trials)", fresh),
        (f"runlab tune --in-process ({args.trials} trials)", inproc),
    ):
        print(f"| {label} | {m['per_trial']:.2f} s | {m['overhead']:.3f} s | "
              f"{m['steady']:.3f} s | {m['steady'] / torch_s:.2f} |")  # fmt: skip
    print(f"| plain Optuna, trivial objective, SQLite (100 trials) | {optuna_s * 1000:.1f} ms | "
          f"| | |")  # fmt: skip
    if ray_s is not None:
        print(f"| Ray Tune, trivial objective ({args.ray_trials} trials) | {ray_s:.2f} s | | | |")
    print(f"\nin-process steady overhead / plain Optuna trial: {inproc['steady'] / optuna_s:.1f}x")
    print("\n| whole process, 1-epoch quickstart | median s |\n| --- | ---: |")
    print(f"| plain PyTorch script (same model, data size, checkpoint) | {plain_run:.2f} |")
    print(f"| runlab run | {runlab_run:.2f} ({runlab_run / plain_run:.2f}x) |")


if __name__ == "__main__":
    main()
