"""Gates decide at epoch ends: events, outcomes in metrics.json, `stopped` with last.pt, baseline
values at the same epoch, and config errors before any training."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import runlab
from runlab.monitor.baseline import Baseline
from runlab.monitor.gates import GateKeeper, gates_from_config

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "data.n_samples=512",
    "trainer.epochs=4",
    "trainer.batch_size=64",
    "model.hidden=[16]",
]
QUICK = str(REPO / "examples" / "quickstart.yaml")


def write_config(tmp_path: Path, gates: list[dict[str, object]], **extra: object) -> Path:
    cfg = {
        "data": {"source": "synthetic.regression", "n_samples": 512},
        "trainer": {"epochs": 4, "batch_size": 64},
        "model": {"hidden": [16]},
        "gates": gates,
        **extra,
    }
    path = tmp_path / "gated.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def run_dir(out: str) -> Path:
    return Path(json.loads(out)["run_dir"])


def test_failed_stop_gate_ends_the_run_stopped_with_last_pt(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, root: Path
) -> None:
    cfg = write_config(
        tmp_path,
        [
            {"name": "too_good", "at_epoch": 2, "require": "val.r2 > 0.9999"},
            {
                "name": "sane",
                "every_epoch": True,
                "require": "train.loss < 1000",
                "on_fail": "warn",
            },
            {"name": "later", "at_epoch": 4, "require": "val.r2 > 0"},
        ],
    )
    code, out, err = cli("run", cfg, "-o", root, "-f", "json")
    assert code == 0, err  # a gate stop is not a failure
    record = runlab.RunRecord(run_dir(out))
    assert record.state is runlab.RunState.STOPPED
    assert (record.path / "checkpoints" / "last.pt").exists()
    assert [r["epoch"] for r in record.scalars() if r["split"] == "val"] == [1, 2]
    gates = {g["name"]: g for g in record.metrics["gates"]}
    assert gates["too_good"]["status"] == "failed" and gates["too_good"]["epoch"] == 2
    assert gates["sane"]["status"] == "passed"
    assert gates["later"]["status"] == "pending"  # never reached: listed all the same
    events = record.events("on_gate")
    assert [(e["name"], e["epoch"]) for e in events] == [("sane", 1), ("too_good", 2), ("sane", 2)]
    failed = events[1]
    val_r2 = [r["r2"] for r in record.scalars() if r["split"] == "val"][1]
    assert failed["passed"] is False and failed["values"] == {"val.r2": val_r2}
    assert "too_good" in record.metrics["stop_reason"]


def test_warn_gate_records_and_goes_on(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, root: Path
) -> None:
    cfg = write_config(
        tmp_path, [{"name": "w", "every_epoch": True, "require": "epoch > 2", "on_fail": "warn"}]
    )
    code, out, err = cli("run", cfg, "-o", root, "-f", "json")
    assert code == 0, err
    record = runlab.RunRecord(run_dir(out))
    assert record.state is runlab.RunState.FINISHED
    passed = [e["passed"] for e in record.events("on_gate")]
    assert passed == [False, False, True, True]
    assert record.metrics["gates"][0]["status"] == "failed"  # the first failure is kept
    assert record.metrics["gates"][0]["epoch"] == 1


def test_baseline_values_at_the_same_epoch_else_final(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, root: Path
) -> None:
    code, out, err = cli(
        "run", QUICK, *TINY, "trainer.epochs=2", "-o", root, "-n", "base", "-f", "json"
    )
    assert code == 0, err
    base = runlab.RunRecord(run_dir(out))
    base_val = [r["loss"] for r in base.scalars() if r["split"] == "val"]
    cfg = write_config(
        tmp_path,
        [
            {
                "name": "vs_base",
                "every_epoch": True,
                "on_fail": "warn",
                "require": "val.loss < baseline.val.loss * 100",
            }
        ],
        baseline="base",
    )
    code, out, err = cli("run", cfg, "-o", root, "-f", "json")
    assert code == 0, err
    record = runlab.RunRecord(run_dir(out))
    used = [e["values"]["baseline.val.loss"] for e in record.events("on_gate")]
    assert used == [base_val[0], base_val[1], base_val[1], base_val[1]]
    assert record.config["baseline"] == base.id  # the name is recorded as the exact run


@pytest.mark.parametrize(
    ("gate", "extra", "message"),
    [
        ({"at_epoch": 1, "require": "val.r3 > 0"}, [], "does not produce (did you mean 'val.r2'?)"),
        ({"at_epoch": 1, "require": "val.loss < baseline.val.loss"}, [], "no baseline is set"),
        ({"at_epoch": 1, "require": "val.loss <"}, [], "expected a value"),
        ({"at_epoch": 9, "require": "val.loss < 1"}, [], "would never be evaluated"),
        ({"require": "val.loss < 1"}, [], "needs 'at_epoch: N' or 'every_epoch: true'"),
        ({"at_epoch": 1, "require": "vall.loss < 1"}, [], "did you mean 'val'?"),
        ({"at_epoch": 1, "require": "best.val.los < 1"}, [], "best.* takes a produced metric"),
        ({"at_epoch": 1, "require": "val.loss < 1", "on_fail": "halt"}, [], "must be one of"),
        (
            {"at_epoch": 1, "require": "val.loss < baseline.val.loss"},
            ["--baseline", "nope"],
            "baseline 'nope' not found",
        ),
    ],
)
def test_bad_gates_are_config_errors_before_training(
    cli: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
    root: Path,
    gate: dict[str, object],
    extra: list[str],
    message: str,
) -> None:
    cfg = write_config(tmp_path, [{"name": "g", **gate}])
    code, _, err = cli("run", cfg, "-o", root, *extra)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not root.exists() or not [p for p in root.iterdir() if p.name != "index.db"]


def test_baseline_metric_missing_is_a_config_error(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, root: Path
) -> None:
    code, _, err = cli("run", QUICK, *TINY, "trainer.epochs=1", "-o", root, "-n", "base")
    assert code == 0, err
    cfg = write_config(tmp_path, [{"at_epoch": 1, "require": "val.loss < baseline.val.sharpe"}])
    code, _, err = cli("check", cfg, "--baseline", "base", "--root", root)
    assert code == 2 and "baseline run" in err and "has no 'val.sharpe'" in err


def test_best_tracks_each_metric_in_its_direction(root: Path) -> None:
    cfg = {
        "gates": [
            {
                "name": "b",
                "every_epoch": True,
                "on_fail": "warn",
                "require": "best.val.loss < 1 and best.val.r2 > 0.5 and best.epoch == 2",
            }
        ]
    }
    with runlab.start_run(root=root, config=cfg) as run:
        keeper = GateKeeper(gates_from_config(cfg), run, monitor="val.loss")
        keeper(1, {"val": {"loss": 2.0, "r2": 0.6}})
        keeper(2, {"val": {"loss": 0.5, "r2": 0.1}})
        keeper(3, {"val": {"loss": 0.9, "r2": 0.2}})
    events = runlab.RunRecord(run.dir).events("on_gate")
    assert events[-1]["values"] == {"best.epoch": 2, "best.val.loss": 0.5, "best.val.r2": 0.6}
    assert [e["passed"] for e in events] == [False, True, True]


def test_baseline_reads_scalars_then_summary(root: Path) -> None:
    with runlab.start_run(root=root, name="b") as run:
        run.log_epoch(1, {"val": {"sharpe": 0.1}})
        run.log_epoch(2, {"val": {"sharpe": 0.3}})
        run.summary["test"] = {"sharpe": 0.25}
    base = Baseline(runlab.RunRecord(run.dir))
    assert base.value(("val", "sharpe"), 1) == 0.1
    assert base.value(("val", "sharpe"), 7) == 0.3  # past its last epoch: the final value
    assert base.value(("test", "sharpe"), 1) == 0.25
    assert base.value(("val", "ic"), 1) is None


def test_resume_after_a_gate_stop_matches_an_uninterrupted_run(
    cli: Callable[..., tuple[int, str, str]], root: Path
) -> None:
    import torch

    args = [
        QUICK,
        *TINY,
        "model.dropout=0.2",
        "schedule.name=step",
        "schedule.step_size=1",
        "schedule.gamma=0.5",
        "-o",
        root,
        "-f",
        "json",
    ]
    code, out, err = cli("run", *args, "-n", "straight")
    assert code == 0, err
    straight = run_dir(out)
    code, out, err = cli(
        "run", *args, "-n", "gated", '+gates=[{at_epoch: 2, require: "epoch > 5"}]'
    )
    assert code == 0, err
    gated = run_dir(out)
    assert runlab.RunRecord(gated).state is runlab.RunState.STOPPED
    code, out, err = cli("run", "--resume", gated.name, "-o", root, "-f", "json")
    assert code == 0, err
    record = runlab.RunRecord(gated)
    assert record.state is runlab.RunState.FINISHED
    lrs = [r["lr"] for r in record.scalars() if r["split"] == "train"]
    assert lrs == [r["lr"] for r in runlab.RunRecord(straight).scalars() if r["split"] == "train"]
    a = torch.load(straight / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(gated / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gates_in_the_episodic_loop(cli: Callable[..., tuple[int, str, str]], root: Path) -> None:
    alloc = str(REPO / "examples" / "allocation.yaml")
    code, _, err = cli("check", alloc, '+gates=[{at_epoch: 1, require: "val.rewrd > 0"}]')
    assert code == 2 and "did you mean 'val.reward'" in err
    code, out, err = cli(
        "run",
        alloc,
        "trainer.epochs=3",
        "episodic.episodes_per_epoch=128",
        "-o",
        root,
        "-f",
        "json",
        '+gates=[{name: big, at_epoch: 2, require: "val.reward > 1e9"}]',
    )
    assert code == 0, err
    record = runlab.RunRecord(run_dir(out))
    assert record.state is runlab.RunState.STOPPED
    assert [r["epoch"] for r in record.scalars() if r["split"] == "val"] == [1, 2]
    assert record.metrics["gates"][0]["status"] == "failed"
    assert (record.path / "checkpoints" / "last.pt").exists()
