"""Episodic allocation trainer throughput (episodes/s) on this machine's device.

    python benchmarks/bench_episodic.py [--repeats 3]

Each configuration trains 4 epochs on a synthetic panel (the first epoch is
warm-up and not counted); episodes/s is what the trainer records as throughput. For scale, the
published figure of seed 000's small configuration is 107-113 episodes/s on an NVIDIA L4 (a
WaveResNet, 1920 episodes in about 18 s): a different, larger model, so compare orders of
magnitude, not ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

import torch

import runlab
from runlab.config import load_config
from runlab.train.data import load_dataset
from runlab.train.episodic import fit_episodic

CONFIGS = {
    "examples/allocation.yaml (10 assets, window 32, MLP 8-32-32-1, 64 episodes/step)": [
        "episodic.episodes_per_epoch=1024"
    ],
    "50 assets, window 64, MLP 16-64-64-1, 64 episodes/step": [
        "data.n_assets=50",
        "data.n_features=16",
        "episodic.window=64",
        "model.hidden=[64,64]",
        "episodic.episodes_per_epoch=256",
    ],
}


def measure(overrides: list[str], device: torch.device, tmp: Path) -> float:
    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(
        repo / "examples" / "allocation.yaml",
        ["trainer.epochs=4", *overrides],
    )
    data = load_dataset(cfg["data"], cfg["task"])
    with runlab.start_run(
        config=cfg, root=tmp, name="bench", capture_stdout=False, index=False
    ) as run:
        fit_episodic(cfg, run, data, device, seed=0, show_progress=False)
    rows = [r for r in runlab.RunRecord(run.dir).scalars() if r["split"] == "train"]
    return statistics.median(r["episodes_per_s"] for r in rows[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"machine: {platform.node()} {os.cpu_count()} cores, torch {torch.__version__}, {name}\n")
    print("| configuration | median episodes/s | min-max |")
    print("| --- | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for label, overrides in CONFIGS.items():
            values = [measure(overrides, device, Path(tmp)) for _ in range(args.repeats)]
            print(
                f"| {label} | {statistics.median(values):,.0f} | "
                f"{min(values):,.0f}-{max(values):,.0f} |"
            )


if __name__ == "__main__":
    main()
