"""`runlab status` over 10,000 indexed runs with 50 of them running, and the cost of gates per
epoch.

    python benchmarks/bench_status.py [--runs 10000] [--live 50] [--repeats 7] [--mlflow-runs 2000]

The 10,000 finished runs are generated as in bench_index.py; the 50 running runs are real
runs (start_run, heartbeat threads) held open by one helper process. `runlab status` is timed as
a whole command, process start included. With MLflow installed, the nearest MLflow query, the
active runs (`search_runs` filtered on status RUNNING), is timed over a SQLite store.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_index import generate, mlflow_timed, row, timed

import runlab
from runlab.monitor.baseline import Baseline
from runlab.monitor.gates import GateKeeper, gates_from_config

HOLD = """
import sys, time, runlab
runs = [runlab.start_run(root=sys.argv[1], name=f"live-{i}", capture_stdout=False,
                         handle_signals=False, config={"trainer": {"epochs": 100}})
        for i in range(int(sys.argv[2]))]
for i, run in enumerate(runs):
    run.progress(epoch=3, total_epochs=100)
    run.log_epoch(3, {"train": {"loss": 0.5}, "val": {"loss": 0.6 + i / 100}})
print("ready", flush=True)
time.sleep(3600)
"""

GATES = {
    "gates": [
        {"name": "scale", "at_epoch": 1, "require": "val.scale > 0.0"},
        {
            "name": "sharpe",
            "every_epoch": True,
            "on_fail": "warn",
            "require": "val.sharpe > baseline.val.sharpe and best.val.loss < 1",
        },
        {"name": "div", "every_epoch": True, "require": "train.loss < 10"},
    ]
}


def gate_cost(tmp: Path, epochs: int) -> list[float]:
    """Seconds per GateKeeper call (3 gates, every epoch: events written, summary updated)."""
    with runlab.start_run(root=tmp / "gates", name="base", capture_stdout=False) as base_run:
        for e in range(1, 6):
            base_run.log_epoch(e, {"val": {"sharpe": 0.1 * e}})
    baseline = Baseline(runlab.RunRecord(base_run.dir))
    times = []
    with runlab.start_run(root=tmp / "gates", config=GATES, capture_stdout=False) as run:
        keeper = GateKeeper(gates_from_config(GATES), run, baseline, "val.loss")
        for epoch in range(1, epochs + 1):
            metrics = {
                "train": {"loss": 1.0 / epoch},
                "val": {"loss": 1.1 / epoch, "scale": 0.3, "sharpe": 0.2},
            }
            t0 = time.perf_counter()
            keeper(epoch, metrics)
            times.append(time.perf_counter() - t0)
    return times


def mlflow_active(n: int, repeats: int, tmp: Path) -> list[float] | None:
    make = (
        "c = mlflow.MlflowClient()\n"
        f"for i in range({n}):\n"
        "    r = c.create_run('0', run_name=f'bench-{i % 50}')\n"
        "    c.log_metric(r.info.run_id, 'val_loss', (i % 97) / 97)\n"
        "    if i >= 50: c.set_terminated(r.info.run_id)\n"
    )
    query = (
        "df = mlflow.search_runs(search_all_experiments=True, "
        "filter_string=\"attributes.status = 'RUNNING'\")\n"
        "assert len(df) == 50, len(df)\n"
    )
    return mlflow_timed(tmp, make, query, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--live", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--mlflow-runs", type=int, default=2_000)
    args = parser.parse_args()
    runlab_bin = Path(sys.executable).with_name("runlab")
    cli = [str(runlab_bin)] if runlab_bin.exists() else [sys.executable, "-m", "runlab"]
    lines = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "runs"
        generate(root, args.runs)
        subprocess.run([*cli, "index", str(root)], check=True, stdout=subprocess.DEVNULL)
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(root), str(args.live)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
            out = subprocess.run(
                [*cli, "status", str(root), "-f", "json"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            import json

            live = [r for r in json.loads(out) if r["status"] == "running"]
            assert len(live) == args.live, len(live)
            label = f"`runlab status` ({args.runs:,} runs indexed, {args.live} running)"
            lines.append(row(label, timed([*cli, "status", str(root)], args.repeats), "< 500"))
            lines.append(
                row(
                    "`runlab status -f json` (same)",
                    timed([*cli, "status", str(root), "-f", "json"], args.repeats),
                )
            )
        finally:
            holder.kill()
        if args.mlflow_runs:
            times = mlflow_active(args.mlflow_runs, 3, tmp)
            if times is None:
                lines.append("| MLflow active runs: skipped, mlflow not installed | | | |")
            else:
                lines.append(
                    row(
                        f"MLflow `search_runs` status = RUNNING (SQLite, {args.mlflow_runs:,} "
                        "runs, 50 running, process start included)",
                        times,
                    )
                )
        per_epoch = gate_cost(tmp, 1000)
    print(
        f"\nmachine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}\n"
    )
    print("| command | median ms | min-max ms | target ms |")
    print("| --- | ---: | ---: | ---: |")
    print("\n".join(lines))
    med = statistics.median(per_epoch) * 1e3
    p99 = sorted(per_epoch)[int(len(per_epoch) * 0.99)] * 1e3
    print(
        f"\ngates per epoch (3 gates, baseline, events written): median {med:.3f} ms, "
        f"p99 {p99:.3f} ms (target < 1 ms)"
    )


if __name__ == "__main__":
    main()
