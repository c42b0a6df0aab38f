"""A plain PyTorch training loop, recorded with runlab's tracking API.

    python examples/track_custom_loop.py --root runs --epochs 5

Writes one run directory under ``--root`` and prints its path. Then:
``runlab ls runs`` and ``runlab show <run id>``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import runlab


def make_data(n: int, features: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=gen)
    w = torch.randn(features, 1, generator=gen)
    y = torch.sin(x @ w) + 0.1 * torch.randn(n, 1, generator=gen)
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="runs", help="runs root")
    parser.add_argument("--name", default="custom-loop")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    config = {
        "data": {"n_train": 2048, "n_val": 512, "features": 16},
        "model": {"hidden": 64, "depth": 2},
        "optim": {"lr": args.lr, "batch_size": args.batch_size},
        "trainer": {"epochs": args.epochs},
    }
    x_train, y_train = make_data(config["data"]["n_train"], 16, args.seed)
    x_val, y_val = make_data(config["data"]["n_val"], 16, args.seed + 1)
    model = nn.Sequential(
        nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    loss_fn = nn.MSELoss()

    with runlab.start_run(
        config=config,
        root=args.root,
        name=args.name,
        tags={"example": "custom-loop"},
        seed=args.seed,
    ) as run:
        run.update_info(device="cpu")
        run.on_preempt(lambda: torch.save(model.state_dict(), run.checkpoint_path("last")))
        steps_per_epoch = (len(x_train) + args.batch_size - 1) // args.batch_size
        run.progress(total_epochs=args.epochs, total_steps=args.epochs * steps_per_epoch)
        best, step = float("inf"), 0
        for epoch in range(args.epochs):
            t0 = time.perf_counter()
            model.train()
            perm = torch.randperm(len(x_train))
            total = 0.0
            for i in range(0, len(x_train), args.batch_size):
                idx = perm[i : i + args.batch_size]
                loss = loss_fn(model(x_train[idx]), y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                run.log({"loss": loss.item(), "lr": opt.param_groups[0]["lr"]}, step=step)
                step += 1
            model.eval()
            with torch.no_grad():
                pred = model(x_val)
                val_loss = loss_fn(pred, y_val).item()
                corr = torch.corrcoef(torch.cat([pred, y_val], 1).T)[0, 1].item()
            train_loss = total / len(x_train)
            elapsed = time.perf_counter() - t0
            run.log_epoch(
                epoch,
                {"train": {"loss": train_loss}, "val": {"loss": val_loss, "corr": corr}},
                lr=opt.param_groups[0]["lr"],
                epoch_time_s=round(elapsed, 4),
            )
            print(f"epoch {epoch + 1}/{args.epochs}  train {train_loss:.4f}  val {val_loss:.4f}")
            if val_loss < best:
                best = val_loss
                torch.save(model.state_dict(), run.checkpoint_path("best"))
                run.event("on_checkpoint", epoch=epoch, path="checkpoints/best.pt")
                run.summary.update(best_epoch=epoch, best_val_loss=val_loss)
        torch.save(model.state_dict(), run.checkpoint_path("last"))
    print(f"run directory: {run.dir}")


if __name__ == "__main__":
    main()
