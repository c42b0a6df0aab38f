"""The episodic allocation trainer and its reward."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import runlab
from runlab.finance import backtest, log_growth_reward
from runlab.train.episodic import to_allocations

REPO = Path(__file__).resolve().parents[1]
ALLOC = REPO / "examples" / "allocation.yaml"


def test_log_growth_reward_by_hand() -> None:
    a = torch.tensor([[[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]])  # 1 episode, T=3, 2 assets
    p = torch.tensor([[[1.0, 1.0], [1.1, 0.9], [1.21, 0.99]]])
    expected = math.log(1.1) + math.log(0.5 * 1.1 + 0.5 * 1.1)
    assert float(log_growth_reward(a, p)[0]) == pytest.approx(expected, rel=1e-6)
    # penalty: |0.5-1| + |0.5-0| + |0-0.5| + |1-0.5| = 2
    assert float(log_growth_reward(a, p, transition_penalty=0.1)[0]) == pytest.approx(
        expected - 0.2, abs=1e-6
    )
    wiped = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    zero = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])
    assert float(log_growth_reward(wiped, zero)[0]) == pytest.approx(math.log(1e-8))  # clamped


def _simulate(alloc: np.ndarray, prices: np.ndarray, cash_rate: float = 0.0) -> float:
    """log(V_end / V_start) of a portfolio held step by step: at each date buy a[t,m] * V of
    asset m in units (short when negative), keep the rest in cash, value it at the next
    prices."""
    value = 1.0
    for t in range(len(alloc) - 1):
        units = alloc[t] * value / prices[t]
        cash = value - (units * prices[t]).sum()
        value = cash * (1 + cash_rate) + (units * prices[t + 1]).sum()
    return math.log(value)


def test_log_growth_reward_for_half_invested_and_long_short() -> None:
    """Asset 0 rises 1% a period, asset 1 is flat: half in asset 0 earns 0.5% a period, as
    does long 0.5 / short 0.5 (the issue's case: these scored -1.37 and -10.6)."""
    p = torch.tensor([[[1.01**t, 1.0] for t in range(3)]], dtype=torch.float64)
    for weights in ([0.5, 0.0], [0.5, -0.5]):
        a = torch.tensor([[weights] * 3], dtype=torch.float64)
        assert float(log_growth_reward(a, p)[0]) == pytest.approx(2 * math.log(1.005), rel=1e-5)
    a = torch.tensor([[[0.0, 0.0]] * 3], dtype=torch.float64)  # all cash earns the cash rate
    assert float(log_growth_reward(a, p, cash_rate=0.001)[0]) == pytest.approx(
        2 * math.log(1.001), rel=1e-5
    )


allocation_case = st.integers(2, 12).flatmap(
    lambda t: st.tuples(
        arrays(np.float64, (t, 3), elements=st.floats(-1, 1)),
        arrays(np.float64, (t, 3), elements=st.floats(-0.3, 0.3)),
        st.sampled_from(["softmax", "tanh", "identity", "raw"]),
        st.sampled_from([0.0, 0.0002]),
    )
)


@settings(max_examples=200, deadline=None)
@given(allocation_case)
def test_log_growth_reward_matches_a_per_step_simulation(case: tuple) -> None:
    scores, moves, transform, cash_rate = case
    prices = np.vstack([np.ones((1, 3)), np.cumprod(1 + moves, axis=0)])[:-1]
    mask = torch.ones(scores.shape, dtype=torch.bool)
    if transform == "raw":  # leverage: weights up to 1 each, net anywhere in [-3, 3]
        alloc = torch.as_tensor(scores)
    else:
        alloc = to_allocations(torch.as_tensor(scores), mask, transform).double()
    got = float(log_growth_reward(alloc[None], torch.as_tensor(prices)[None], 0.0, cash_rate))
    value_path = _simulate(alloc.numpy(), prices, cash_rate)
    assume(value_path > math.log(1e-6))  # a wiped-out portfolio is clamped, not simulated
    assert got == pytest.approx(value_path, rel=1e-6, abs=1e-6)
    if transform != "raw" and cash_rate == 0:  # the backtester's compounding, no costs
        returns = prices[1:] / prices[:-1] - 1
        result = backtest(alloc.numpy()[:-1], returns)
        assert got == pytest.approx(float(np.log1p(result.net_returns).sum()), abs=1e-6)
    if transform == "softmax":  # fully invested: the old formula, unchanged
        ratio = prices[1:] / prices[:-1]
        old = np.log((alloc.numpy()[:-1] * ratio).sum(-1)).sum()
        assert got == pytest.approx(old, abs=1e-6)


def test_transforms() -> None:
    scores = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    mask = torch.tensor([[True, True, True, False]])
    soft = to_allocations(scores, mask, "softmax")
    assert float(soft.sum()) == pytest.approx(1.0) and float(soft[0, 3]) == 0.0
    for name in ("tanh", "identity"):
        w = to_allocations(scores * 5, mask, name)
        assert float(w.abs().sum()) <= 1.0 + 1e-6 and float(w[0, 3]) == 0.0


def test_allocation_example_runs_and_backtests(cli, root: Path) -> None:
    code, out, err = cli(
        "run", ALLOC, "trainer.epochs=2", "trainer.log_every=4", "-o", root, "-f", "json"
    )
    assert code == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    m = runlab.RunRecord(run_dir).metrics
    for key in (
        "reward_mean",
        "reward_std",
        "episodes",
        "transition_penalty",
        "turnover",
        "throughput_eps_per_sec",
    ):
        assert key in m, key
    assert m["episodes"] == 2 * 1024 and m["throughput_eps_per_sec"] > 0
    # the supervised loop's record too: losses, step log, learning rate, figures
    assert m["val_loss"] == pytest.approx(-m["val"]["reward"])
    assert m["train_loss"] is not None and m["epochs_run"] == 2
    step_rows = runlab.RunRecord(run_dir).steps()
    assert step_rows and {"loss", "reward", "lr", "grad_norm"} <= set(step_rows[-1])
    assert (run_dir / "figures" / "losses.png").exists()
    assert {"reward", "sharpe", "max_drawdown", "turnover"} <= set(m["val"])
    assert m["monitor"] == "val.reward" and m["best_epoch"] in (1, 2)
    rows = runlab.RunRecord(run_dir).scalars()
    assert [r["split"] for r in rows] == ["train", "val", "train", "val"]
    assert rows[0]["episodes_per_s"] > 0 and rows[0]["lr"] == pytest.approx(0.001)
    code, out, err = cli("backtest", "allocation", "--root", root)
    assert code == 0, err
    bt = json.loads((run_dir / "artifacts/backtest/test/metrics.json").read_text())
    assert bt["avg_gross_leverage"] == pytest.approx(1.0)  # softmax: fully invested, long only
    loaded = runlab.load_model(run_dir)
    assert loaded.config["loop"] == "episodic"


def test_custom_reward_and_penalty(cli, root: Path) -> None:
    code, out, err = cli(
        "run",
        ALLOC,
        "trainer.epochs=1",
        "episodic.reward=tests.helpers:linear_reward",
        "episodic.transition_penalty=0.05",
        "episodic.transform=tanh",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 0, err
    m = runlab.RunRecord(json.loads(out)["run_dir"]).metrics
    assert m["transition_penalty"] == 0.05 and math.isfinite(m["reward_mean"])


def test_preflight_and_a_resume_that_does_not_fit(cli, root: Path) -> None:
    code, out, _ = cli("check", ALLOC, "-f", "json")
    report = json.loads(out)
    assert code == 0 and set(report["stages"]) == {
        "data",
        "model",
        "train",
        "validate",
        "checkpoint",
    }
    assert "reward" in report["validate"]
    code, _, err = cli("run", ALLOC, "episodic.window=1000", "-o", root)
    assert code == 2 and "episodic.window=1000 does not fit" in err
    code, out, _ = cli("run", ALLOC, "trainer.epochs=1", "-o", root, "-f", "json")
    code, _, err = cli("run", "--resume", "allocation", "model.hidden=[7]", "-o", root)
    assert code == 2 and "checkpoint does not fit this config" in err


def test_log_growth_reward_is_exact_for_low_and_zero_prices() -> None:
    """CI found the old ``p[t] + 1e-8`` denominator off by 1e-6 after eleven 30% falls (prices
    near 0.02); a penny stock made it worse. A zero price earns nothing instead of -100%."""
    p = torch.tensor([[[0.703125**t * 1e-3] for t in range(12)]], dtype=torch.float64)
    a = torch.ones((1, 12, 1), dtype=torch.float64)
    assert float(log_growth_reward(a, p)[0]) == pytest.approx(11 * math.log(0.703125), abs=1e-12)
    p = torch.tensor([[[0.0, 1.0], [2.0, 1.1]]], dtype=torch.float64)
    a = torch.tensor([[[0.5, 0.5], [0.5, 0.5]]], dtype=torch.float64)
    assert float(log_growth_reward(a, p)[0]) == pytest.approx(math.log(1.05), abs=1e-12)


def test_the_episodic_loop_shares_the_epoch_bookkeeping(cli, root: Path) -> None:
    """Early stopping, every-N checkpoints and the stop checkpoint were supervised-only copies
    before the bookkeeping was shared (runlab.train.epochs): the episodic loop ignored them."""
    code, out, err = cli(
        "run",
        ALLOC,
        "trainer.epochs=4",
        "trainer.early_stopping.patience=0",
        "checkpoint.every=1",
        "episodic.episodes_per_epoch=128",
        "episodic.warm_start_epochs=2",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 0, err
    run = runlab.RunRecord(json.loads(out)["run_dir"])
    assert run.metrics["stopped_early"] is True
    assert [e["epoch"] for e in run.events("on_early_stop")] == [1]
    assert (run.path / "checkpoints" / "epoch_0001.pt").exists()
    assert (run.path / "checkpoints" / "model.pt").resolve().name == "best.pt"
    warm = run.metrics["warm_start"]  # the warm start's own record
    assert warm["epochs"] == 2 and len(warm["loss"]) == 2 and all(map(math.isfinite, warm["loss"]))
    saved = torch.load(run.path / "checkpoints" / "warm_start.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["step"] == 0  # before the first episodic step
    assert [e["epochs"] for e in run.events("on_warm_start")] == [2]


def _steps_by_hand(alloc: np.ndarray, prices: np.ndarray) -> list[float]:
    """The log growth of each step of a portfolio held step by step (as _simulate)."""
    out, value = [], 1.0
    for t in range(len(alloc) - 1):
        units = alloc[t] * value / prices[t]
        cash = value - (units * prices[t]).sum()
        new = cash + (units * prices[t + 1]).sum()
        out.append(math.log(max(new / value, 1e-8)))
        value = new
    return out


risk_case = st.integers(3, 16).flatmap(
    lambda t: st.tuples(
        arrays(np.float64, (t, 3), elements=st.floats(-1, 1)),
        arrays(np.float64, (t, 3), elements=st.floats(-0.3, 0.3)),
        st.sampled_from([0.05, 0.25, 0.5, 1.0]),
    )
)


@settings(max_examples=150, deadline=None)
@given(risk_case)
def test_risk_penalties_match_a_per_step_simulation(case: tuple) -> None:
    """Seed 003's per-step risk penalties: CVaR of the step log growths (the mean of the
    worst ceil(alpha * n)) and the episode's max drawdown, against a loop over the steps."""
    scores, moves, alpha = case
    prices = np.vstack([np.ones((1, 3)), np.cumprod(1 + moves, axis=0)])[:-1]
    alloc = to_allocations(
        torch.as_tensor(scores), torch.ones(scores.shape, dtype=torch.bool), "tanh"
    ).numpy()
    steps = _steps_by_hand(alloc, prices)
    worst = sorted(steps)[: max(1, math.ceil(alpha * len(steps) - 1e-9))]
    cvar_ref = sum(worst) / len(worst)
    path, peak, dd = 0.0, 0.0, 0.0
    for r in steps:
        path += r
        peak = max(peak, path)
        dd = max(dd, peak - path)
    a, p = torch.as_tensor(alloc)[None], torch.as_tensor(prices)[None]
    plain = float(log_growth_reward(a, p)[0])
    with_risk = float(
        log_growth_reward(a, p, cvar_penalty=0.7, cvar_alpha=alpha, drawdown_penalty=0.3)[0]
    )
    assert plain == pytest.approx(sum(steps), abs=1e-9)
    assert with_risk == pytest.approx(sum(steps) + 0.7 * cvar_ref - 0.3 * dd, abs=1e-9)


def test_risk_penalties_from_the_config(cli, root: Path) -> None:
    base = [ALLOC, "trainer.epochs=1", "episodic.episodes_per_epoch=128", "-o", root]
    code, out, err = cli("run", *base, "-f", "json")
    assert code == 0, err
    plain = runlab.RunRecord(json.loads(out)["run_dir"]).metrics
    code, out, err = cli(
        "run", *base, "episodic.cvar_penalty=2", "episodic.drawdown_penalty=1", "-f", "json"
    )
    assert code == 0, err
    risky = runlab.RunRecord(json.loads(out)["run_dir"]).metrics
    assert risky["val"]["reward"] < plain["val"]["reward"]  # the penalties are subtracted
    code, _, err = cli(
        "run", *base, "episodic.reward=tests.helpers:linear_reward", "episodic.cvar_penalty=1"
    )
    assert code == 2 and "applies to reward: log_growth" in err and err.count("\n") == 1


@pytest.mark.gpu
def test_fp16_on_cuda_trains_through_a_grad_scaler(cli, root: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    code, out, err = cli(
        "run",
        ALLOC,
        "trainer.epochs=2",
        "trainer.mixed_precision=fp16",
        "--device",
        "cuda",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert saved["grad_scaler"]["scale"] > 0  # the scaler ran (its state is in the checkpoint)
    assert not runlab.RunRecord(run_dir).events("on_warning")  # no fp32 fallback on CUDA
    assert math.isfinite(runlab.RunRecord(run_dir).metrics["val"]["reward"])
