"""The built-in trainer against a hand-written PyTorch loop: same data, seed, model, optimizer
and batch order; the epoch losses and validation metrics must agree. The reference computes
its own scaling, loss and metrics (sklearn for the metrics), so a trainer that broadcasts a
loss, scales wrongly or mis-averages a metric disagrees with it."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import runlab

SEED = 7
EPOCHS = 4
BATCH = 64
LR = 1e-2
HIDDEN = [32, 16]


def _rows_data(kind: str, n: int = 600, f: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 3.0, (n, f)).astype(np.float32)
    w = rng.normal(size=(f, 3))
    signal = x @ w / 6 + 0.3 * rng.standard_normal((n, 3))
    y: np.ndarray
    if kind == "flat":
        y = signal[:, 0].astype(np.float32)
    elif kind == "column":
        y = signal[:, :1].astype(np.float32)
    elif kind == "multi":
        y = signal.astype(np.float32)
    else:  # classification: the argmax of three noisy scores
        y = signal.argmax(1).astype(np.int64)
    cut = int(n * 0.75)
    return {"X_train": x[:cut], "y_train": y[:cut], "X_val": x[cut:], "y_val": y[cut:]}


def _mlp(in_features: int, out_features: int) -> nn.Module:
    torch.manual_seed(SEED)  # runlab seeds torch before it builds the model
    layers: list[nn.Module] = []
    width = in_features
    for h in HIDDEN:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def _scale(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    flat = train.reshape(-1, train.shape[-1]).astype(np.float64)
    mean, std = flat.mean(0), flat.std(0)
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def _hand_loop(
    x: np.ndarray,
    y: np.ndarray,
    xv: np.ndarray,
    out_features: int,
    loss_fn: Any,
    mask: np.ndarray | None = None,
    batch: int = BATCH,
) -> tuple[list[float], np.ndarray]:
    """Mean batch loss per epoch, and the final model's predictions on ``xv``."""
    model = _mlp(x.shape[-1], out_features)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    gen = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    mt = torch.from_numpy(mask) if mask is not None else None
    losses = []
    for _ in range(EPOCHS):
        perm = torch.randperm(len(xt), generator=gen)
        total, steps = 0.0, 0
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            loss = loss_fn(model(xt[idx]), yt[idx], mt[idx] if mt is not None else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, steps = total + float(loss.detach()), steps + 1
        losses.append(total / steps)
    with torch.no_grad():
        return losses, model(torch.from_numpy(xv)).numpy()


def _run(cli, root: Path, tmp_path: Path, data: str, task: str, *extra: str) -> Path:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"data: {{source: {data}}}\ntask: {task}\nmodel: {{hidden: {HIDDEN}}}\n"
        f"trainer: {{epochs: {EPOCHS}, batch_size: {BATCH}}}\noptim: {{lr: {LR}}}\n"
    )
    code, out, err = cli("run", cfg, "--seed", str(SEED), "-o", root, "-f", "json", *extra)
    assert code == 0, err
    return Path(json.loads(out)["run_dir"])


def _scalars(run_dir: Path, split: str) -> list[dict[str, str]]:
    with open(run_dir / "scalars.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["split"] == split]


def _train_losses(run_dir: Path) -> list[float]:
    return [float(r["loss"]) for r in _scalars(run_dir, "train")]


def _mse(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return ((pred - y) ** 2).mean()


def _cross_entropy(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return F.cross_entropy(pred, y)


@pytest.mark.parametrize("kind", ["flat", "column", "multi"])
def test_regression_matches_a_hand_loop(cli, root: Path, tmp_path: Path, kind: str) -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    arrays = _rows_data(kind)
    np.savez(tmp_path / "d.npz", **arrays)
    run_dir = _run(cli, root, tmp_path, str(tmp_path / "d.npz"), "regression")
    x, xv = _scale(arrays["X_train"], arrays["X_val"])
    y, yv = arrays["y_train"], arrays["y_val"]
    k = 1 if y.ndim == 1 else y.shape[1]
    # the reference model has k outputs; a scalar target compares with its (n, 1) output as (n,)
    squeeze = y.ndim == 1

    def loss(p: torch.Tensor, t: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        return _mse(p.squeeze(-1) if squeeze else p, t, m)

    expected, pred = _hand_loop(x, y, xv, k, loss)
    np.testing.assert_allclose(_train_losses(run_dir), expected, rtol=1e-4)
    pred = pred[:, 0] if squeeze else pred
    val = json.loads((run_dir / "metrics.json").read_text())["val"]
    assert val["mse"] == pytest.approx(mean_squared_error(yv, pred), rel=1e-4)
    assert val["mae"] == pytest.approx(mean_absolute_error(yv, pred), rel=1e-4)
    assert val["r2"] == pytest.approx(r2_score(yv, pred), rel=1e-4, abs=1e-5)
    assert val["r2"] > 0.5  # it learned: a broadcast loss stays near 0
    # a loaded model predicts in the targets' own shape: (n,), (n, 1) or (n, k)
    loaded = runlab.load_model(run_dir, which="last")  # the final weights
    np.testing.assert_allclose(
        loaded.predict(arrays["X_val"]).reshape(yv.shape),
        pred.reshape(yv.shape),
        atol=1e-3,  # float32 scaling in runlab, float64 in the reference
    )
    assert loaded.predict(arrays["X_val"]).shape == yv.shape
    if kind == "multi":
        per_output = r2_score(yv, pred, multioutput="raw_values")
        assert [val[f"r2_{i}"] for i in range(3)] == pytest.approx(per_output, rel=1e-4)


def test_classification_matches_a_hand_loop(cli, root: Path, tmp_path: Path) -> None:
    from sklearn.metrics import accuracy_score, f1_score

    arrays = _rows_data("classes")
    np.savez(tmp_path / "d.npz", **arrays)
    run_dir = _run(cli, root, tmp_path, str(tmp_path / "d.npz"), "classification")
    x, xv = _scale(arrays["X_train"], arrays["X_val"])
    expected, logits = _hand_loop(x, arrays["y_train"], xv, 3, _cross_entropy)
    np.testing.assert_allclose(_train_losses(run_dir), expected, rtol=1e-4)
    val = json.loads((run_dir / "metrics.json").read_text())["val"]
    guess = logits.argmax(1)
    assert val["accuracy"] == pytest.approx(accuracy_score(arrays["y_val"], guess), abs=1e-6)
    assert val["f1"] == pytest.approx(f1_score(arrays["y_val"], guess, average="macro"), rel=1e-4)


def _panel(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A CSV panel of 40 dates x 12 assets with a few pairs missing, and its dense arrays."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    d, a, f = 40, 12, 4
    x = rng.standard_normal((d, a, f)).astype(np.float32)
    y = (0.01 * (x @ rng.standard_normal(f) + rng.standard_normal((d, a)))).astype(np.float32)
    mask = rng.random((d, a)) > 0.1
    dates = [f"2024-{1 + i // 28:02d}-{1 + i % 28:02d}" for i in range(d)]
    rows = [
        {"date": dates[i], "asset": f"A{j:03d}", "target": y[i, j]}
        | {f"f{k}": x[i, j, k] for k in range(f)}
        for i in range(d)
        for j in range(a)
        if mask[i, j]
    ]
    path = tmp_path / "panel.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path, {"x": x, "y": y, "mask": mask}


@pytest.mark.parametrize("task", ["ranking", "regression"])
def test_panel_tasks_match_a_hand_loop(cli, root: Path, tmp_path: Path, task: str) -> None:
    """Ranking (per-date masked MSE) and regression on a panel (which used to crash in the
    preflight): batches are whole dates, missing pairs drop out of the loss."""
    path, p = _panel(tmp_path)
    run_dir = _run(cli, root, tmp_path, str(path), task, "trainer.batch_size=8")
    cut, vcut = int(40 * 0.6), int(40 * 0.8)
    x, m, y = p["x"], p["mask"], p["y"]
    flat = x[:cut][m[:cut]].astype(np.float64)
    mean, std = flat.mean(0), flat.std(0)
    xs = ((x - mean) / std).astype(np.float32)
    y = np.where(m, y, 0.0).astype(np.float32)

    def masked_mse(pred: torch.Tensor, t: torch.Tensor, mk: torch.Tensor | None) -> torch.Tensor:
        assert mk is not None
        return (((pred.squeeze(-1) - t) ** 2) * mk).sum() / mk.sum()

    expected, pred = _hand_loop(xs[:cut], y[:cut], xs[cut:vcut], 1, masked_mse, m[:cut], 8)
    np.testing.assert_allclose(_train_losses(run_dir), expected, rtol=1e-4)
    val = json.loads((run_dir / "metrics.json").read_text())["val"]
    vm = m[cut:vcut]
    err = pred[..., 0][vm] - y[cut:vcut][vm]
    assert val["loss"] == pytest.approx(float((err**2).mean()), rel=1e-4)
