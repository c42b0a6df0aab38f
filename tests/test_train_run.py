"""runlab run / check end to end, in-process through the CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import runlab
from tests.helpers import arrays

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def run_ok(cli, *args: str) -> Path:
    code, out, err = cli("run", *args, "-f", "json")
    assert code == 0, err
    info = json.loads(out)
    assert info["status"] == "finished", err
    return Path(info["run_dir"])


def test_quickstart_writes_a_complete_run(cli, root: Path) -> None:
    run_dir = run_ok(cli, EXAMPLES / "quickstart.yaml", "trainer.epochs=3", "-o", root)
    record = runlab.RunRecord(run_dir)
    assert record.state is runlab.RunState.FINISHED and record.name == "quickstart"
    m = record.metrics
    for key in (
        "train_loss",
        "val_loss",
        "best_epoch",
        "best",
        "device",
        "duration_seconds",
        "samples_per_sec",
        "epochs_run",
        "stopped_early",
    ):
        assert key in m, key
    assert m["epochs_run"] == 3 and m["stopped_early"] is False and m["device"] == "cpu"
    assert set(m["test"]) == {"loss", "mse", "mae", "r2"} and m["val"]["r2"] > 0.3
    assert record.lookup(("metrics", "val", "loss")) == m["val_loss"]
    rows = record.scalars()
    assert [(r["epoch"], r["split"]) for r in rows][:2] == [(1, "train"), (1, "val")]
    header = (run_dir / "scalars.csv").read_text().splitlines()[0].split(",")
    assert header == [
        "epoch",
        "split",
        "loss",
        "mse",
        "mae",
        "r2",
        "lr",
        "epoch_time_s",
        "samples_per_s",
    ]
    ckpt = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert {
        "model",
        "optimizer",
        "scheduler",
        "grad_scaler",
        "rng",
        "epoch",
        "step",
        "best",
        "data_scaler",
        "config",
    } <= set(ckpt)
    assert (run_dir / "checkpoints" / "model.pt").resolve() == (
        run_dir / "checkpoints" / "best.pt"
    ).resolve()
    assert (run_dir / "figures" / "losses.png").stat().st_size > 1000
    assert (run_dir / "figures" / "metrics.png").stat().st_size > 1000
    assert "epoch 3/3" in record.stdout()
    config = record.config
    assert config["trainer"]["epochs"] == 3 and config["optim"]["name"] == "adamw"  # defaults
    assert record.overrides == ["trainer.epochs=3"]


def test_text_output_is_the_run_directory(cli, root: Path) -> None:
    code, out, err = cli("run", EXAMPLES / "quickstart.yaml", "trainer.epochs=1", "-o", root)
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("epoch 1/1  train.loss") and Path(lines[-1]).is_dir()
    assert err.startswith("preflight passed in")


@pytest.mark.parametrize(
    ("example", "overrides", "checks"),
    [
        ("classification.yaml", ["trainer.epochs=2"], {"val.accuracy": 0.5}),
        ("ranking_panel.yaml", ["trainer.epochs=2"], {"val.rank_ic": 0.02, "val.sharpe": 1.0}),
        (
            "configs/experiment.yaml",
            ["model=resmlp", "optim=sgd", "trainer.epochs=2"],
            {"val.r2": 0.2},
        ),
    ],
)
def test_examples_run(
    cli, root: Path, example: str, overrides: list[str], checks: dict[str, float]
) -> None:
    run_dir = run_ok(cli, EXAMPLES / example, *overrides, "-o", root)
    record = runlab.RunRecord(run_dir)
    for key, floor in checks.items():
        split, metric = key.split(".")
        assert record.metrics[split][metric] > floor, (key, record.metrics[split])
    if example.startswith("configs"):
        assert record.config["model"]["name"] == "resmlp"
        assert record.config["optim"] == {**record.config["optim"], "name": "sgd", "lr": 0.01}
        assert record.config["notes"] == "mlp on synthetic regression, lr 0.01"  # interpolation
    if example.startswith("ranking"):
        with open(run_dir / "artifacts" / "test_ic_by_date.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 50 and rows[0]["date"] == "2020-07-19"


def test_print_config_and_dry_run_leave_no_run_directory(cli, root: Path) -> None:
    code, out, _ = cli(
        "run",
        EXAMPLES / "configs" / "experiment.yaml",
        "model=resmlp",
        "--print-config",
        "-o",
        root,
    )
    assert code == 0 and "name: resmlp" in out and "epochs: 5" in out and "scaler: standard" in out
    code, out, _ = cli("run", EXAMPLES / "quickstart.yaml", "--dry-run", "-o", root)
    assert code == 0 and out.startswith("preflight passed in")
    for stage in ("data", "model", "train", "validate", "checkpoint"):
        assert f"  {stage}" in out
    code, out, _ = cli("check", EXAMPLES / "ranking_panel.yaml", "-f", "json")
    report = json.loads(out)
    assert report["model"]["parameters"] > 0 and "rank_ic" in report["validate"]
    assert report["data"]["train"] == [150, 100, 16]
    assert not root.exists()


def test_preflight_failure_names_the_stage_and_creates_nothing(cli, root: Path) -> None:
    code, _, err = cli(
        "run", EXAMPLES / "quickstart.yaml", "trainer.monitor=val.sharpe", "-o", root
    )
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("runlab: error: preflight failed at stage 'validate': trainer.monitor")
    assert "available: train.loss, val.loss, val.mae, val.mse, val.r2" in err
    assert not root.exists()


def test_early_stopping(cli, root: Path) -> None:
    run_dir = run_ok(
        cli,
        EXAMPLES / "quickstart.yaml",
        "optim.lr=0.0",
        "trainer.early_stopping.patience=1",
        "-o",
        root,
    )
    m = runlab.RunRecord(run_dir).metrics
    assert m["stopped_early"] is True and m["epochs_run"] == 2 and m["best_epoch"] == 1
    assert runlab.RunRecord(run_dir).events("on_early_stop")[0]["epoch"] == 2


def test_nan_loss_fails_naming_epoch_and_step(cli, root: Path) -> None:
    code, out, err = cli(
        "run",
        EXAMPLES / "quickstart.yaml",
        "~model",
        "+model._target_=tests.helpers.NaNAfter",
        "+model.after=25",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 1 and json.loads(out)["status"] == "failed"
    record = runlab.RunRecord(json.loads(out)["run_dir"])
    assert record.state is runlab.RunState.FAILED
    error = record.metrics["error"]
    assert error["type"] == "NonFiniteLossError"
    assert "non-finite training loss in epoch 2" in error["message"]
    assert "run failed: NonFiniteLossError" in err


def test_nan_loss_skip_counts_skipped_steps(cli, root: Path) -> None:
    run_dir = run_ok(
        cli,
        EXAMPLES / "quickstart.yaml",
        "~model",
        "+model._target_=tests.helpers.NaNAfter",
        "+model.after=5",
        "+model.every=7",
        "trainer.on_nan=skip",
        "trainer.epochs=2",
        "-o",
        root,
    )
    m = runlab.RunRecord(run_dir).metrics
    assert m["skipped_steps"] > 0 and np.isfinite(m["train_loss"])


def test_custom_loop_and_target_model(cli, root: Path) -> None:
    run_dir = run_ok(
        cli,
        EXAMPLES / "quickstart.yaml",
        "loop=tests.helpers:custom_loop",
        "trainer.epochs=3",
        "-o",
        root,
    )
    record = runlab.RunRecord(run_dir)
    assert record.metrics["custom"] is True and len(record.scalars()) == 3
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "checkpoints" / "last.pt").touch()  # even with one, a function loop: no resume
    code, _, err = cli("run", "--resume", record.id, "-o", root)
    assert code == 2 and "resumable loop (supervised, episodic" in err and err.count("\n") == 1
    run_dir = run_ok(
        cli,
        EXAMPLES / "quickstart.yaml",
        "~model",
        "+model._target_=tests.helpers.TinyNet",
        "+model.width=4",
        "trainer.epochs=1",
        "-o",
        root,
    )
    assert runlab.RunRecord(run_dir).info["parameters"] == 16 * 4 + 4 + 4 + 1


def test_npz_source_scaler_and_load_model(cli, root: Path, tmp_path: Path) -> None:
    data = arrays()
    np.savez(tmp_path / "d.npz", **data)
    cfg = tmp_path / "npz.yaml"
    cfg.write_text(
        f"data: {{source: {tmp_path / 'd.npz'}, scaler: robust}}\n"
        "task: regression\nmodel: {name: mlp, hidden: [16]}\ntrainer: {epochs: 2}\n"
    )
    run_dir = run_ok(cli, cfg, "-o", root)
    loaded = runlab.load_model(run_dir)
    x = data["X_train"]
    assert loaded.scaler["kind"] == "robust"
    assert loaded.scaler["center"] == pytest.approx(np.median(x, axis=0).tolist(), rel=1e-5)
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, best[name])
    pred = loaded.predict(data["X_test"])
    assert pred.shape == (len(data["X_test"]),)
    manual = (
        loaded.model(
            torch.as_tensor(
                (data["X_test"] - np.array(loaded.scaler["center"]))
                / np.array(loaded.scaler["scale"]),
                dtype=torch.float32,
            )
        )
        .squeeze(-1)
        .detach()
        .numpy()
    )
    assert np.allclose(pred, manual, atol=1e-5)
    by_name = runlab.load_model("npz", root=str(root))
    assert by_name.config["data"]["scaler"] == "robust"


def test_tuple_source_and_csv_panel(cli, root: Path, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    run_dir = run_ok(
        cli,
        EXAMPLES / "quickstart.yaml",
        "data.source=tests.helpers:tuple_source",
        "trainer.epochs=1",
        "-o",
        root,
    )
    assert "test" not in runlab.RunRecord(run_dir).metrics
    rng = np.random.default_rng(1)
    rows = [
        {
            "date": f"2024-01-{d + 1:02d}",
            "ticker": f"A{a}",
            "mom": rng.normal(),
            "val": rng.normal(),
            "ret": rng.normal(),
        }
        for d in range(30)
        for a in range(20)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "panel.csv", index=False)
    run_dir = run_ok(
        cli,
        EXAMPLES / "ranking_panel.yaml",
        f"data.source={tmp_path}/panel.csv",
        "data.asset_col=ticker",
        "data.target=ret",
        "data.train_end=2024-01-18",
        "data.val_end=2024-01-24",
        "trainer.epochs=1",
        "-o",
        root,
    )
    record = runlab.RunRecord(run_dir)
    assert record.metrics["parameters"] > 0
    text = (run_dir / "artifacts" / "test_ic_by_date.csv").read_text()
    dates = list(csv.DictReader(text.splitlines()))
    assert [d["date"] for d in dates] == [f"2024-01-{d}" for d in range(25, 31)]


def test_mixed_precision_on_cpu(cli, root: Path) -> None:
    run_dir = run_ok(
        cli,
        EXAMPLES / "quickstart.yaml",
        "trainer.mixed_precision=bf16",
        "trainer.epochs=1",
        "-o",
        root,
    )
    assert runlab.RunRecord(run_dir).metrics["val_loss"] < 2
    run_dir = run_ok(
        cli,
        EXAMPLES / "quickstart.yaml",
        "trainer.mixed_precision=fp16",
        "trainer.epochs=1",
        "-o",
        root,
    )
    (warning,) = runlab.RunRecord(run_dir).events("on_warning")
    assert "fp16 needs CUDA" in warning["message"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["false", "fp16", "bf16"])
def test_cuda_training(cli, root: Path, precision: str) -> None:
    run_dir = run_ok(
        cli,
        EXAMPLES / "quickstart.yaml",
        f"trainer.mixed_precision={precision}",
        "trainer.epochs=2",
        "--device",
        "cuda",
        "-o",
        root,
    )
    m = runlab.RunRecord(run_dir).metrics
    assert m["device"].startswith("cuda") and m["max_memory_mib"] > 0 and m["val"]["r2"] > 0.2


def test_sequence_model_on_windowed_inputs(cli, root: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 10, 3)).astype(np.float32)  # rows x time x features
    y = x[:, -3:, 0].mean(1).astype(np.float32)
    np.savez(tmp_path / "w.npz", X_train=x[:400], y_train=y[:400], X_val=x[400:], y_val=y[400:])
    run_dir = run_ok(
        cli,
        EXAMPLES / "quickstart.yaml",
        f"data.source={tmp_path}/w.npz",
        "model.name=gru",
        "model.hidden=16",
        "trainer.epochs=3",
        "-o",
        root,
    )
    record = runlab.RunRecord(run_dir)
    layer1, layer2 = 3 * (3 * 16 + 16 * 16 + 2 * 16), 3 * (16 * 16 + 16 * 16 + 2 * 16)
    assert record.info["parameters"] == layer1 + layer2 + 17  # model.blocks=2 GRU layers, head
    assert record.metrics["val"]["r2"] > 0.0


def test_kept_checkpoints(cli, root: Path) -> None:
    run_dir = run_ok(
        cli, EXAMPLES / "quickstart.yaml", "trainer.epochs=3", "--keep-checkpoints", "-o", root
    )
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == [
        "best.pt",
        "epoch_0001.pt",
        "epoch_0002.pt",
        "epoch_0003.pt",
        "last.pt",
        "model.pt",
    ]
    run_dir = run_ok(
        cli, EXAMPLES / "quickstart.yaml", "trainer.epochs=4", "checkpoint.every=2", "-o", root
    )
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("epoch_*")) == [
        "epoch_0002.pt",
        "epoch_0004.pt",
    ]
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    epoch4 = torch.load(run_dir / "checkpoints" / "epoch_0004.pt", weights_only=True)
    assert all(torch.equal(last["model"][k], epoch4["model"][k]) for k in last["model"])


@pytest.mark.parametrize(
    "overrides",
    [
        ["schedule.name=step", "schedule.step_size=1", "schedule.gamma=0.5"],
        ["schedule.name=plateau", "schedule.patience=0", "optim.lr=0.5"],
        ["trainer.accumulate=3", "trainer.grad_clip=0.5"],
        ["optim.name=sgd", "optim.lr=0.01"],
        ["+optim._target_=torch.optim.RMSprop", "+optim.lr=0.001"],
    ],
)
def test_trainer_options(cli, root: Path, overrides: list[str]) -> None:
    run_dir = run_ok(cli, EXAMPLES / "quickstart.yaml", "trainer.epochs=3", *overrides, "-o", root)
    record = runlab.RunRecord(run_dir)
    lrs = [r["lr"] for r in record.scalars() if r["split"] == "train"]
    assert np.isfinite(record.metrics["train_loss"])
    if overrides[0] == "schedule.name=step":
        assert lrs == pytest.approx([1e-3, 5e-4, 2.5e-4])  # lr logged after each epoch's step
    if overrides[0] == "schedule.name=plateau":
        assert lrs[-1] <= lrs[0]
    if "trainer.accumulate=3" in overrides:
        ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
        assert ckpt["step"] == 3 * math.ceil(20 / 3)  # 20 batches an epoch -> 7 optimizer steps
    if "+optim._target_=torch.optim.RMSprop" in overrides:
        ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
        assert "square_avg" in next(iter(ckpt["optimizer"]["state"].values()))
