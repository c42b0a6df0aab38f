"""Reading a long step series back: 1,000,000 steps of a run's steps.jsonl (step, time, loss,
lr, grad_norm), as runlab reads them (the first read parses the file and writes the columnar
cache beside it; later reads load the cache), against polars' read_ndjson and orjson, and
the dashboard's chart of it (downsampled to 1,000 points).

    python benchmarks/bench_steps.py [--steps 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runlab.tracking import series


def timed(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {args.steps:,} steps")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        path = run / "steps.jsonl"
        with open(path, "w") as fh:
            for i in range(args.steps):
                record = {"step": i, "time": 1.7e9 + i * 0.01, "loss": 1.0 / (i + 1)}
                record.update(lr=1e-3 * (1 - i / args.steps), grad_norm=0.5 + (i % 97) / 97)
                fh.write(json.dumps(record) + "\n")
        rows: list[tuple[str, float]] = []
        t0 = time.perf_counter()
        series.step_columns(run)  # parses and writes steps.columns.npz
        rows.append(("runlab, first read (parse + write the cache)", time.perf_counter() - t0))
        rows.append(
            (
                "runlab `step_columns` / `RunRecord.step_series()` (cache)",
                timed(lambda: series.step_columns(run), args.repeats),
            )
        )

        def chart() -> Any:
            from runlab.web.downsample import min_max_array

            for xs, ys in series.step_columns(run).values():
                min_max_array(xs, ys, 1000)

        rows.append(
            (
                "runlab, the dashboard's chart of every series (cache + downsample)",
                timed(chart, args.repeats),
            )
        )
        try:
            import polars as pl

            rows.append(("polars `read_ndjson`", timed(lambda: pl.read_ndjson(path), args.repeats)))
        except ImportError:
            print("polars not installed: pip install polars")
        try:
            import orjson

            def with_orjson() -> Any:
                with open(path, "rb") as fh:
                    return [orjson.loads(line) for line in fh]

            rows.append(("orjson, line by line", timed(with_orjson, args.repeats)))
        except ImportError:
            print("orjson not installed: pip install orjson")
        from runlab._io import read_jsonl

        rows.append(
            (
                "json.loads line by line (runlab's reading before)",
                timed(lambda: read_jsonl(path), 1),
            )
        )
    print("\n| reading | median s |\n| --- | ---: |")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
