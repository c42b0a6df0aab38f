"""A flow of 20 steps, all cached: `runlab flow` against DVC's `dvc repro` on the same
pipeline (20 chained shell stages, each reading the previous one's output and one input file).

    python benchmarks/bench_flow.py [--steps 20] [--repeats 7] [--dvc PATH_TO_DVC]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make(folder: Path, steps: int) -> None:
    flow = ["name: bench", "steps:"]
    dvc = ["stages:"]
    for i in range(steps):
        (folder / f"in{i}.txt").write_text(f"input {i}\n")
        prev = f"out{i - 1}.txt" if i else f"in{i}.txt"
        cmd = f"cat {prev} in{i}.txt > out{i}.txt"
        flow += [f"  s{i}:", f"    cmd: {cmd}", f"    inputs: [in{i}.txt]",
                 f"    outputs: {{out: out{i}.txt}}"]  # fmt: skip
        if i:
            flow.append(f"    after: [s{i - 1}]")
        dvc += [f"  s{i}:", f"    cmd: {cmd}", f"    deps: [{prev}, in{i}.txt]",
                f"    outs: [out{i}.txt]"]  # fmt: skip
    (folder / "flow.yaml").write_text("\n".join(flow) + "\n")
    (folder / "dvc.yaml").write_text("\n".join(dvc) + "\n")


def timed(command: list[str], cwd: Path, repeats: int) -> list[float]:
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)  # the run that fills
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dvc", default=shutil.which("dvc"))
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    os.environ.clear()
    os.environ.update(env)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make(work, args.steps)
        runlab = [sys.executable, "-m", "runlab", "flow", "flow.yaml", "-r", str(work / "runs")]
        rows.append(("runlab flow, all cached", timed(runlab, work, args.repeats)))
        if args.dvc:
            for command in (["git", "init", "-q"], [args.dvc, "init", "-q"]):
                subprocess.run(command, cwd=work, check=True, capture_output=True)
            rows.append(("dvc repro, all cached", timed([args.dvc, "repro"], work, args.repeats)))
        else:
            print("dvc skipped: pip install dvc, or --dvc PATH")
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {args.steps} steps\n")
    print("| what | median s | min-max s |")
    print("| --- | ---: | ---: |")
    for label, times in rows:
        print(f"| {label} | {statistics.median(times):.3f} | {min(times):.3f}-{max(times):.3f} |")


if __name__ == "__main__":
    main()
