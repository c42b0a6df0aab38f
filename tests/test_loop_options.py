"""Every trainer option against every built-in loop: it changes what the run records, or the
loop refuses it before any run exists (exit 2, one line naming the option).

The episodic loop ignored checkpoint.keep/every, early stopping, the schedule and fp16's
GradScaler without a word (issue 17); this table is what keeps a new option or a new loop from
doing that again. Each row runs the loop twice, with and without the option (on top of the
row's base), and compares one observable: the weights, the step log, the files, a metric.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import runlab
from runlab._io import read_jsonl
from runlab.cli.main import main

REPO = Path(__file__).resolve().parents[1]
BASE = {
    "supervised": [
        str(REPO / "examples" / "quickstart.yaml"),
        "data.n_samples=600",
        "model.hidden=[16]",
        "trainer.epochs=2",
        "trainer.batch_size=64",
        "trainer.log_every=1",
    ],
    "episodic": [
        str(REPO / "examples" / "allocation.yaml"),
        "data.n_dates=150",
        "data.n_assets=5",
        "model.hidden=[16]",
        "trainer.epochs=2",
        "episodic.window=8",
        "episodic.batch_episodes=16",
        "episodic.episodes_per_epoch=64",
        "trainer.log_every=1",
    ],
}
LOOPS = list(BASE)
NAN_MODEL = ["~model", "+model._target_=tests.helpers.NaNAfter", "+model.after=3"]


def weights(run: Path) -> str:
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(state[name].float().numpy().tobytes())
    return digest.hexdigest()


def steps(run: Path) -> int:
    return sum(1 for row in read_jsonl(run / "steps.jsonl") if "loss" in row)


def files(run: Path) -> list[str]:
    return sorted(
        f"{p.parent.name}/{p.name}" for d in ("checkpoints", "figures") for p in (run / d).glob("*")
    )


def metric(key: str) -> Callable[[Path], Any]:
    return lambda run: runlab.RunRecord(run).metrics.get(key)


def info(key: str) -> Callable[[Path], Any]:
    return lambda run: json.loads((run / "run.json").read_text()).get(key)


def lrs(run: Path) -> list[float]:
    return [r["lr"] for r in runlab.RunRecord(run).scalars() if r["split"] == "train"]


def warnings(run: Path) -> list[str]:
    return [e["message"] for e in runlab.RunRecord(run).events("on_warning")]


def early_stop(run: Path) -> list[tuple[Any, Any]]:
    return [(e["epoch"], e["monitor"]) for e in runlab.RunRecord(run).events("on_early_stop")]


def status(run: Path) -> tuple[str, Any]:
    record = runlab.RunRecord(run)
    return record.state.value, record.metrics.get("skipped_steps")


Overrides = list[str] | dict[str, list[str]]  # the same for each loop, or per loop
# (row id, base overrides, the option's overrides, observable, loops that refuse the option)
ROWS: list[tuple[str, Overrides, Overrides, Callable[[Path], Any], set[str]]] = [
    ("epochs", [], ["trainer.epochs=3"], metric("epochs_run"), set()),
    ("batch_size", [], ["trainer.batch_size=16"], weights, {"episodic"}),
    (
        "batch_size in the warm start",
        ["episodic.warm_start_epochs=1"],
        ["trainer.batch_size=16"],
        metric("warm_start"),
        {"supervised"},  # the row is about the episodic warm start
    ),
    ("grad_clip", [], ["trainer.grad_clip=0.001"], weights, set()),
    ("accumulate", [], ["trainer.accumulate=2"], weights, {"episodic"}),
    ("mixed_precision bf16", [], ["trainer.mixed_precision=bf16"], weights, set()),
    ("mixed_precision fp16 on CPU", [], ["trainer.mixed_precision=fp16"], warnings, set()),
    ("on_nan", NAN_MODEL, ["trainer.on_nan=skip"], status, set()),
    ("monitor", [], ["trainer.monitor=train.loss"], metric("best"), set()),
    (
        "mode",
        [],
        {"supervised": ["trainer.mode=max"], "episodic": ["trainer.mode=min"]},
        metric("best"),
        set(),
    ),
    (
        "early_stopping.patience",
        ["trainer.epochs=3"],
        ["trainer.early_stopping.patience=0"],
        metric("epochs_run"),
        set(),
    ),
    (
        "early_stopping.min_delta",
        {  # bases that improve every epoch (the episodic base's val.reward falls)
            "supervised": ["trainer.epochs=3", "trainer.early_stopping.patience=1"],
            "episodic": [
                "trainer.epochs=3",
                "trainer.early_stopping.patience=1",
                "trainer.early_stopping.mode=min",
            ],
        },
        ["trainer.early_stopping.min_delta=1000"],
        metric("epochs_run"),
        set(),
    ),
    (
        "early_stopping.monitor",
        ["trainer.early_stopping.patience=0"],
        ["trainer.early_stopping.monitor=train.loss"],
        early_stop,
        set(),
    ),
    (
        "early_stopping.mode",
        ["trainer.epochs=3", "trainer.early_stopping.patience=1"],
        {
            "supervised": ["trainer.early_stopping.mode=max"],
            "episodic": ["trainer.early_stopping.mode=min"],
        },
        metric("epochs_run"),
        set(),
    ),
    ("log_every", [], ["trainer.log_every=2"], steps, set()),
    ("loss", [], ["trainer.loss=huber"], metric("val_loss"), {"episodic"}),
    ("limit_train_batches", [], ["trainer.limit_train_batches=2"], steps, set()),
    (
        "limit_val_batches",
        ["data.n_samples=3000"],  # 600 validation rows: 3 batches of 256
        ["trainer.limit_val_batches=1"],
        metric("val"),
        {"episodic"},
    ),
    ("data_on_device", [], ["trainer.data_on_device=false"], weights, {"episodic"}),
    ("schedule", [], ["schedule.name=step", "schedule.step_size=1"], lrs, set()),
    ("optim", [], ["optim.name=sgd"], weights, set()),
    ("checkpoint.every", [], ["checkpoint.every=1"], files, set()),
    ("checkpoint.keep", [], ["checkpoint.keep=true"], files, set()),
    ("figures", [], ["figures.preset=none"], files, set()),
    ("figures family", [], ["figures.lr=true"], files, set()),
]
# the weights of a data_on_device=false run on a CPU are the same (nothing moves): GPU only
CPU_ONLY_SAME = {"data_on_device"}
_runs: dict[tuple[str, ...], tuple[int, str, str]] = {}


def _run(capsys: pytest.CaptureFixture[str], root: Path, args: list[str]) -> tuple[int, str, str]:
    key = tuple(args)
    if key not in _runs:
        capsys.readouterr()
        try:
            main(["run", *args, "--no-preflight", "-o", str(root), "-f", "json"])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        _runs[key] = (code, out, err)
    return _runs[key]


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loop-options") / "runs"


# the supervised loop's rows run by default; the episodic loop's (the same table, about 25 s)
# with the slow tests (make test-slow), to keep the default suite within CI's budget
LOOP_PARAMS = [
    pytest.param(loop, marks=[pytest.mark.slow] if loop == "episodic" else []) for loop in LOOPS
]


@pytest.mark.parametrize("loop", LOOP_PARAMS)
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_each_option_has_an_effect_or_is_refused(
    row: tuple[str, Overrides, Overrides, Callable[[Path], Any], set[str]],
    loop: str,
    runs_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, base_, option_, observe, refused = row
    base = base_[loop] if isinstance(base_, dict) else base_
    option = option_[loop] if isinstance(option_, dict) else option_
    if name == "batch_size in the warm start" and loop == "supervised":
        pytest.skip("the supervised loop has no warm start")
    if name in CPU_ONLY_SAME and loop not in refused and not torch.cuda.is_available():
        pytest.skip("data_on_device only moves data between a host and a GPU")
    before = set(runs_root.iterdir()) if runs_root.exists() else set()
    code, out, err = _run(capsys, runs_root, [*BASE[loop], *base, *option])
    if loop in refused:
        key = option[0].split("=")[0]
        assert code == 2, (code, err)
        assert err.count("\n") == 1 and key in err and "has no effect" in err, err
        assert (set(runs_root.iterdir()) if runs_root.exists() else set()) == before
        return
    changed = Path(json.loads(out)["run_dir"])
    code0, out0, err0 = _run(capsys, runs_root, [*BASE[loop], *base])
    assert code0 in (0, 1) and out0, err0  # the on_nan row's base run fails, as it should
    unchanged = Path(json.loads(out0)["run_dir"])
    assert observe(changed) != observe(unchanged), (name, loop, observe(changed))


@pytest.mark.slow
@pytest.mark.parametrize("loop", LOOPS)
def test_compile_trains_a_compiled_model(
    loop: str, runs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch.compile takes ~20 s on these CPUs: slow. Same numbers as eager, up to rounding."""
    code, out, err = _run(capsys, runs_root, [*BASE[loop], "trainer.compile=true"])
    assert code == 0, err
    compiled = Path(json.loads(out)["run_dir"])
    assert info("compiled")(compiled) is True
    eager = Path(json.loads(_run(capsys, runs_root, BASE[loop])[1])["run_dir"])
    assert info("compiled")(eager) is False
    a = runlab.RunRecord(compiled).metrics["val_loss"]
    assert a == pytest.approx(runlab.RunRecord(eager).metrics["val_loss"], rel=1e-3, abs=1e-5)
