"""Listing and indexing at scale: `runlab ls` and `runlab index` over 10,000 generated runs, and
`runlab --help`, each timed as a whole command (process start included), like a user sees it.

    python benchmarks/bench_index.py [--runs 10000] [--repeats 7] [--mlflow-runs 2000]

The runs are copies of one real run directory written by start_run, each with its own id,
config and metrics. With MLflow installed, the same listing is timed with `mlflow.search_runs`
over runs in a local SQLite store, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import runlab
from runlab.tracking import config_file

WHERE = "metrics.val_loss < 0.1 and config.model.depth == 3"


def generate(root: Path, n: int) -> None:
    """n run directories shaped exactly like real ones (a real run is the template)."""
    with runlab.start_run(
        config={"optim": {"lr": 1e-3}, "model": {"depth": 2}},
        root=root / "_template",
        name="bench",
        capture_stdout=False,
        index=False,
    ) as template:
        template.log_epoch(0, {"train": {"loss": 1.0}, "val": {"loss": 1.1}})
    info = json.loads((template.dir / "run.json").read_text())
    for i in range(n):
        run_id = f"20261122-{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}-bench-{i:04x}"
        d = root / run_id
        shutil.copytree(template.dir, d)
        info.update(
            id=run_id,
            name=f"bench-{i % 50}",
            tags={"group": str(i % 7)},
            created=f"2026-11-22T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
        )
        (d / "run.json").write_text(json.dumps(info, indent=2))
        (d / "metrics.json").write_text(
            json.dumps(
                {"train_loss": 1.0 / (i + 1), "val_loss": (i % 97) / 97, "best_epoch": i % 10}
            )
        )
        config_file.write(  # config.yaml and its twin, as a run writes them
            d,
            {
                "optim": {"lr": 10 ** -(2 + i % 4), "weight_decay": 0.01},
                "model": {"depth": 2 + i % 4, "hidden": 64},
                "trainer": {"epochs": 10},
            },
        )
    shutil.rmtree(root / "_template")


# Bytecode caches as in any installed environment (a sandbox may set PYTHONDONTWRITEBYTECODE,
# which makes every start compile runlab's modules again)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], repeats: int, env: dict[str, str] | None = None) -> list[float]:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env or ENV)  # caches warm
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env or ENV)
        out.append(time.perf_counter() - t0)
    return out


def mlflow_timed(tmp: Path, make: str, query: str, repeats: int) -> list[float] | None:
    """Fill a SQLite MLflow store with the ``make`` script, then time the ``query`` script
    as whole processes; both start with ``mlflow`` imported and the store set. None without
    MLflow."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return None
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    head = f"import mlflow\nmlflow.set_tracking_uri({uri!r})\n"
    subprocess.run([sys.executable, "-c", head + make], check=True, stderr=subprocess.DEVNULL)
    return timed([sys.executable, "-c", head + query], repeats)


def mlflow_search(n: int, repeats: int, tmp: Path) -> list[float] | None:
    make = (
        f"for i in range({n}):\n"
        "    with mlflow.start_run(run_name=f'bench-{i % 50}'):\n"
        "        mlflow.log_params({'lr': 10 ** -(2 + i % 4), 'depth': 2 + i % 4})\n"
        "        mlflow.log_metrics({'train_loss': 1 / (i + 1), 'val_loss': (i % 97) / 97})\n"
    )
    query = "df = mlflow.search_runs(search_all_experiments=True, max_results=100000)\n"
    return mlflow_timed(tmp, make, query, repeats)


def row(label: str, times: list[float], target: str = "") -> str:
    return (
        f"| {label} | {statistics.median(times) * 1000:.0f} | "
        f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f} | {target} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--mlflow-runs",
        type=int,
        default=2_000,
        help="runs created in MLflow for the side-by-side search (0: skip)",
    )
    args = parser.parse_args()
    exe = [sys.executable, "-m", "runlab"]
    runlab_bin = Path(sys.executable).with_name("runlab")
    cli = [str(runlab_bin)] if runlab_bin.exists() else exe
    lines = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "runs"
        t0 = time.perf_counter()
        generate(root, args.runs)
        print(f"generated {args.runs} runs in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        n = f"{args.runs:,}"
        bare = timed([sys.executable, "-c", "import typer, rich"], args.repeats)
        lines.append(row("`python -c 'import typer, rich'`", bare))
        helps = timed([*cli, "--help"], args.repeats)
        ratio = statistics.median(helps) / statistics.median(bare)
        lines.append(row(f"`runlab --help` ({ratio:.2f}x the bare imports)", helps, "2x"))
        lines.append(
            row(
                f"`runlab index` (rebuild, {n} runs)",
                timed([*cli, "index", str(root)], 3),
                "< 10,000",
            )
        )
        lines.append(
            row(
                f"`runlab ls` ({n} runs, table of the newest 50)",
                timed([*cli, "ls", str(root)], args.repeats),
                "< 300",
            )
        )
        lines.append(
            row(
                f"`runlab ls --format csv` (all {n} rows)",
                timed([*cli, "ls", str(root), "-f", "csv"], args.repeats),
            )
        )
        lines.append(
            row(
                f"`runlab ls --where '{WHERE}'` ({n} runs)",
                timed([*cli, "ls", str(root), "-w", WHERE], args.repeats),
            )
        )
        if args.mlflow_runs:
            times = mlflow_search(args.mlflow_runs, 3, tmp)
            if times is None:
                lines.append("| MLflow `search_runs`: skipped, mlflow not installed | | | |")
            else:
                lines.append(
                    row(
                        f"MLflow `search_runs` (SQLite store, {args.mlflow_runs:,} runs, "
                        "process start included)",
                        times,
                    )
                )
    print(
        f"\nmachine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}\n"
    )
    print("| command | median ms | min-max ms | target ms |")
    print("| --- | ---: | ---: | ---: |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
