"""runlab.rl.PortfolioEnv against independent references: any sequence of actions ends at the
value runlab.finance.backtest gives for the weights the environment held (Hypothesis over
actions, transforms, costs, leverage limits, borrowing rates, NaN returns), each step's terms
against a hand-written loop, Gymnasium's own check_env, and no step sees a future return."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("gymnasium")
from gymnasium.utils.env_checker import check_env

from runlab.finance.backtest import backtest
from runlab.rl.env import PortfolioEnv, to_weights


def _panel(seed: int, dates: int = 40, assets: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    returns = rng.normal(3e-4, 0.02, (dates, assets))
    return returns, rng.normal(size=(dates, assets, 2))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    transform=st.sampled_from(["softmax", "tanh", "identity"]),
    gross=st.floats(0.1, 3.0),
    bps=st.floats(0.0, 50.0),
    limit=st.one_of(st.none(), st.floats(0.2, 2.0)),
    borrowing=st.floats(0.0, 0.2),
    nan_rate=st.sampled_from([0.0, 0.1]),
)
def test_the_env_ends_where_the_backtest_of_its_weights_ends(
    seed: int,
    transform: str,
    gross: float,
    bps: float,
    limit: float | None,
    borrowing: float,
    nan_rate: float,
) -> None:
    returns, features = _panel(seed)
    rng = np.random.default_rng(seed + 1)
    returns[rng.random(returns.shape) < nan_rate] = np.nan
    env = PortfolioEnv(
        returns, features, window=5, transform=transform, gross=gross,
        transaction_cost_bps=bps, leverage_limit=limit, borrowing_cost=borrowing,
    )  # fmt: skip
    env.reset(seed=seed)
    targets, rewards, infos = [], [], []
    done = False
    while not done:
        action = rng.normal(0, 2, 3).astype(np.float32)
        targets.append(env.target(action))
        _, reward, done, _, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
    held = np.array(targets)
    reference = backtest(
        held, returns[5:], transaction_cost_bps=bps, leverage_limit=limit,
        borrowing_cost=borrowing,
    )  # fmt: skip
    assert env.value == pytest.approx(reference.equity[-1], rel=1e-12)
    assert sum(rewards) == pytest.approx(math.log(reference.equity[-1]), abs=1e-9)
    for i, info in enumerate(infos):
        assert info["turnover"] == pytest.approx(reference.turnover[i], abs=1e-12)
        assert info["cost"] == pytest.approx(reference.transaction_costs[i], abs=1e-15)
        assert info["borrowing"] == pytest.approx(reference.borrow_costs[i], abs=1e-15)
        assert info["leverage"] == pytest.approx(reference.gross_leverage[i], abs=1e-12)


def test_each_step_against_a_hand_written_loop() -> None:
    """Scores 0.625 and -0.3125 at 2x gross (long 1.25, short 0.625) cut to a 1.2 limit,
    10 bps, 6.75% borrowing: by hand."""
    returns = np.array([[0.01, -0.02], [0.03, 0.01], [-0.01, 0.02], [0.0, 0.0]])
    env = PortfolioEnv(
        returns, window=1, transform="identity", gross=2.0, transaction_cost_bps=10,
        leverage_limit=1.2, borrowing_cost=0.0675,
    )  # fmt: skip
    env.reset()
    value, held = 1.0, np.zeros(2)
    for t in range(1, 4):
        _, reward, done, _, info = env.step(np.array([0.125, -0.0625], np.float32))  # x5
        w = np.array([1.25, -0.625]) * (1.2 / 1.875)  # gross 1.875 cut to 1.2: [0.8, -0.4]
        r = returns[t]
        gross_return = w @ r
        turnover = np.abs(w - held).sum()
        cost = turnover * 10 / 1e4
        borrowed = max(w[w > 0].sum() - 1, 0) + (-w[w < 0]).sum()
        borrowing = borrowed * 0.0675 / 252
        net = gross_return - cost - borrowing
        value *= 1 + net
        held = w * (1 + r) / (1 + gross_return)
        assert info["scaled"] and info["leverage"] == pytest.approx(1.2)
        assert info["net_return"] == pytest.approx(net, abs=1e-15)
        assert reward == pytest.approx(math.log(1 + net), abs=1e-15)
        assert env.value == pytest.approx(value, rel=1e-14)
        assert done == (t == 3)


def test_gymnasiums_own_check_and_rewards() -> None:
    returns, features = _panel(0, dates=60)
    for kwargs in (
        {"reward": "log_growth"},
        {"reward": "differential_sharpe", "transform": "softmax"},
        {"turnover_penalty": 0.01, "cvar_penalty": 1.0, "random_start": True, "episode_length": 10},
    ):
        env = PortfolioEnv(returns, features, window=10, **kwargs)
        check_env(env, skip_render_check=True)
    env = PortfolioEnv(returns, features, window=10, cvar_penalty=2.0, cvar_alpha=0.2)
    plain = PortfolioEnv(returns, features, window=10)
    env.reset(), plain.reset()
    steps, total, base = [], 0.0, 0.0
    action = np.array([0.2, -0.2, 0.1], np.float32)
    done = False
    while not done:
        _, reward, done, _, info = env.step(action)
        _, r2, _, _, _ = plain.step(action)
        steps.append(math.log(1 + info["net_return"]))
        total, base = total + reward, base + r2
    worst = sorted(steps)[: math.ceil(0.2 * len(steps))]
    assert total == pytest.approx(base + 2.0 * np.mean(worst))  # the episodic loop's CVaR term


def test_no_observation_sees_a_future_return() -> None:
    """Shuffle every row after date t: the observation at t is the same."""
    returns, features = _panel(3, dates=50)
    env = PortfolioEnv(returns, features, window=8)
    env.reset()
    rng = np.random.default_rng(0)
    for t in range(8, 49):
        future = returns.copy()
        later = future[t:]
        future[t:] = later[rng.permutation(len(later))] * rng.normal(1, 0.5, later.shape)
        ffeat = features.copy()
        ffeat[t + 1 :] = rng.normal(size=ffeat[t + 1 :].shape)
        other = PortfolioEnv(future, ffeat, window=8)
        other.reset(options={"start": t})
        mine = PortfolioEnv(returns, features, window=8)
        mine.reset(options={"start": t})
        assert np.array_equal(other._observation(), mine._observation()), t


def test_actions_map_to_the_episodic_loops_transforms() -> None:
    torch = pytest.importorskip("torch")
    from runlab.train.episodic import to_allocations

    rng = np.random.default_rng(1)
    for transform in ("softmax", "tanh", "identity"):
        for _ in range(20):
            scores = rng.normal(0, 3, 4)
            mine = to_weights(scores, transform)
            theirs = to_allocations(
                torch.tensor(scores), torch.ones(4, dtype=torch.bool), transform
            ).numpy()
            assert np.allclose(mine, theirs, atol=1e-12), transform


def test_bad_arguments_say_what_is_wrong() -> None:
    returns, _ = _panel(0, dates=10)
    for kwargs, words in [
        ({"window": 10}, "more than window=10"),
        ({"window": 3, "transform": "relu"}, "transform one of"),
        ({"window": 3, "features": np.zeros((9, 3))}, "features (9, 3, 1)"),
        ({"window": 3, "episode_length": 20}, "episode_length 20"),
    ]:
        with pytest.raises(ValueError) as err:
            PortfolioEnv(returns, **kwargs)
        assert words in str(err.value)


class _PeekingEnv(PortfolioEnv):
    """A planted leak: the observation also holds the return the action is about to earn."""

    def _observation(self) -> np.ndarray:
        seen = super()._observation()
        return np.concatenate([seen, self.r[self.t].astype(np.float32)])


def test_the_leakage_check_passes_the_env_and_catches_a_planted_leak() -> None:
    from runlab.rl.leakage import leaking_steps

    returns, features = _panel(5, dates=80)
    options = {"window": 6}
    assert leaking_steps(returns, features, options, steps=15) == ([], 15)
    leaks, checked = leaking_steps(returns, features, options, steps=15, env_class=_PeekingEnv)
    assert checked == 15 and len(leaks) == 15  # every date sees its own future return


def test_runlab_rl_check_leakage_on_a_config(tmp_path: Any) -> None:
    import subprocess
    import sys

    config = tmp_path / "ppo.yaml"
    config.write_text(
        "data: {source: synthetic.panel, n_dates: 200, n_assets: 3, n_features: 2}\n"
        "loop: ppo\nrl: {window: 5}\n"
    )
    run = [sys.executable, "-m", "runlab", "rl"]
    done = subprocess.run([*run, "check-leakage", str(config), "--steps", "8"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "no leak: 8 dates" in done.stdout, done.stderr
    for args, words in [
        (["peek", str(config)], "the action is check-leakage"),
        (["check-leakage", str(config), "--steps", "0"], "--steps 0"),
        (["check-leakage", str(config), "--split", "future"], "--split future"),
        (["check-leakage", str(config), "rl.window=500"], "not more than rl.window"),
    ]:
        bad = subprocess.run([*run, *args], capture_output=True, text=True, timeout=120)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and words in lines[0], bad.stderr
