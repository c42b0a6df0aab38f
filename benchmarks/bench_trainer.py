"""Training throughput: runlab's built-in trainer against a hand-written PyTorch loop (same
model, data as tensors, index slicing, same batch size), a DataLoader loop and PyTorch
Lightning, measured alternately in one process. Also the quickstart's preflight time.

    python benchmarks/bench_trainer.py [--repeats 3] [--epochs 2] [--device cpu]

samples/s counts training steps only (forward, loss, backward, optimizer step) for every
method; runlab's number is the samples_per_sec it records in metrics.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import runlab
from runlab.config import load_config
from runlab.train.data import load_dataset
from runlab.train.fit import fit
from runlab.train.models import MLP

WORKLOADS = {
    "MLP 64-256-256-1, 200k rows, batch 512": {"features": 64, "hidden": [256, 256]},
    "tiny MLP 16-32-1, 200k rows, batch 512": {"features": 16, "hidden": [32]},
}
ROWS, BATCH = 200_000, 512


def make_data(features: int, tmp: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS + 2000, features), dtype=np.float32)
    y = (np.sin(x[:, 0]) + x[:, 1:4].sum(1) * 0.3).astype(np.float32)
    path = tmp / f"data{features}.npz"
    np.savez(path, X_train=x[:ROWS], y_train=y[:ROWS], X_val=x[ROWS:], y_val=y[ROWS:])
    return path


def model_for(w: dict[str, Any]) -> torch.nn.Module:
    torch.manual_seed(0)
    return MLP(w["features"], 1, hidden=w["hidden"])


def hand_written(
    w: dict[str, Any], x: torch.Tensor, y: torch.Tensor, epochs: int, device: torch.device
) -> float:
    model = model_for(w).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    n, steps = x.shape[0], (x.shape[0] + BATCH - 1) // BATCH
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, device=device)
        for i in range(steps):
            idx = perm[i * BATCH : (i + 1) * BATCH]
            loss = F.mse_loss(model(x[idx]).squeeze(-1), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    _sync(device)
    return epochs * n / (time.perf_counter() - t0)


def dataloader_loop(
    w: dict[str, Any], x: torch.Tensor, y: torch.Tensor, epochs: int, device: torch.device
) -> float:
    model = model_for(w).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x.cpu(), y.cpu()),
        batch_size=BATCH,
        shuffle=True,
        pin_memory=device.type == "cuda",
    )
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = F.mse_loss(model(xb).squeeze(-1), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    _sync(device)
    return epochs * x.shape[0] / (time.perf_counter() - t0)


def lightning_loop(
    w: dict[str, Any], x: torch.Tensor, y: torch.Tensor, epochs: int, device: torch.device
) -> float:
    import lightning as L

    class Module(L.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model_for(w)

        def training_step(self, batch: Any, _: int) -> torch.Tensor:
            xb, yb = batch
            return F.mse_loss(self.model(xb).squeeze(-1), yb)

        def configure_optimizers(self) -> Any:
            return torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=0.01)

    class EpochTimer(L.Callback):  # type: ignore[misc]
        seconds = 0.0

        def on_train_epoch_start(self, *_: Any) -> None:
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, *_: Any) -> None:
            self.seconds += time.perf_counter() - self.t0

    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x.cpu(), y.cpu()), batch_size=BATCH, shuffle=True
    )
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(Module(), loader)
    return epochs * x.shape[0] / timer.seconds


def runlab_trainer(
    w: dict[str, Any],
    data_path: Path,
    epochs: int,
    device: torch.device,
    tmp: Path,
    precision: str = "false",
) -> float:
    cfg_path = tmp / "bench.yaml"
    cfg_path.write_text(
        f"data: {{source: {data_path}, scaler: none}}\ntask: regression\n"
        f"model: {{name: mlp, hidden: {w['hidden']}}}\n"
        f"trainer: {{epochs: {epochs}, batch_size: {BATCH}, mixed_precision: {precision}}}\n"
    )
    cfg = load_config(cfg_path)
    data = load_dataset(cfg["data"], "regression")
    with runlab.start_run(
        config=cfg, root=tmp / "runs", name="bench", capture_stdout=False, index=False
    ) as run:
        fit(cfg, run, data, device, seed=0, show_progress=False)
    return float(run.summary["samples_per_sec"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def preflight_seconds(repeats: int) -> tuple[list[float], list[float]]:
    quick = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"
    report_s, command_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "runlab", "check", str(quick), "-f", "json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        command_s.append(time.perf_counter() - t0)
        import json

        report_s.append(json.loads(out)["seconds"])
    return report_s, command_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    try:
        import lightning  # noqa: F401

        have_lightning = True
    except ImportError:
        have_lightning = False
    print(
        f"machine: {platform.node()} {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, "
        f"threads {torch.get_num_threads()}\n"
    )
    table = [
        "| workload | method | median samples/s | min-max | vs hand-written |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for label, w in WORKLOADS.items():
            path = make_data(w["features"], tmp)
            with np.load(path) as npz:
                x = torch.as_tensor(npz["X_train"], device=device)
                y = torch.as_tensor(npz["y_train"], device=device)
            methods: dict[str, Callable[[], float]] = {
                "hand-written (tensors, index slicing)": lambda w=w, x=x, y=y: hand_written(
                    w, x, y, args.epochs, device
                ),
                "runlab trainer": lambda w=w, p=path: runlab_trainer(
                    w, p, args.epochs, device, tmp
                ),
                "DataLoader loop": lambda w=w, x=x, y=y: dataloader_loop(
                    w, x, y, args.epochs, device
                ),
            }
            if device.type == "cuda":
                methods["runlab trainer, bf16"] = lambda w=w, p=path: runlab_trainer(
                    w, p, args.epochs, device, tmp, "bf16"
                )
                methods["runlab trainer, fp16"] = lambda w=w, p=path: runlab_trainer(
                    w, p, args.epochs, device, tmp, "fp16"
                )
            if have_lightning:
                methods["PyTorch Lightning"] = lambda w=w, x=x, y=y: lightning_loop(
                    w, x, y, args.epochs, device
                )
            results: dict[str, list[float]] = {m: [] for m in methods}
            for rep in range(args.repeats + 1):  # alternate, so drift hits every method alike
                for name, fn in methods.items():
                    with (
                        open(os.devnull, "w") as null,
                        contextlib.redirect_stdout(null),
                        contextlib.redirect_stderr(null),
                    ):
                        value = fn()
                    if rep:  # round 0 warms up (allocator, kernels, imports)
                        results[name].append(value)
            base = statistics.median(results["hand-written (tensors, index slicing)"])
            for name, values in results.items():
                med = statistics.median(values)
                table.append(
                    f"| {label} | {name} | {med:,.0f} | "
                    f"{min(values):,.0f}-{max(values):,.0f} | {med / base:.2f} |"
                )
    print("\n".join(table))
    if device.type == "cpu":
        report_s, command_s = preflight_seconds(5)
        print(
            f"\npreflight of examples/quickstart.yaml: median {statistics.median(report_s):.2f}s "
            f"(report), {statistics.median(command_s):.2f}s for the whole `runlab check` "
            f"command including interpreter start and imports (5 runs)"
        )
    if not have_lightning:
        print("\nPyTorch Lightning skipped: pip install lightning (benchmark environment only)")


if __name__ == "__main__":
    main()
