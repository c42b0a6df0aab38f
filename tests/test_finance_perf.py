"""perf_stats (the whole return-metric set at once, sharing its work) against each metric's own
function and against empyrical: shapes, ties, constant columns, NaN, one row, every cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runlab.finance as rf
from runlab.finance.perf import METRICS

ep = pytest.importorskip("empyrical")


def _returns(t: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0004, 0.012, (t, n)) + rng.standard_t(3, (t, n)) * 0.002


def _one_by_one(r: object, cutoff: float) -> dict[str, object]:
    tails = {"value_at_risk", "conditional_value_at_risk"}
    return {
        name: getattr(rf, name)(r, cutoff=cutoff) if name in tails else getattr(rf, name)(r)
        for name in METRICS
    }


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=80, deadline=None)
@given(
    t=st.integers(1, 400),
    n=st.integers(1, 200),
    seed=st.integers(0, 2**16),
    tie=st.booleans(),
    constant=st.booleans(),
    nan=st.sampled_from([0.0, 0.0, 0.1]),
    cutoff=st.sampled_from([0.05, 0.01, 0.1, 0.5, 0.95, 0.99, 0.0, 1.0]),
)
def test_every_value_is_its_own_function(
    t: int, n: int, seed: int, tie: bool, constant: bool, nan: float, cutoff: float
) -> None:
    """Widths and lengths across the transposed copy's 128-tiles, ties at the partial sort's
    neighbours, a constant column (Sharpe's zero deviation), NaN (each metric's own skipping),
    and cutoffs whose positions meet the 5th and 95th percentiles'."""
    r = _returns(t, n, seed)
    if tie:
        r = np.round(r, 2)
    if constant:
        r[:, 0] = 0.001
    if nan:
        r[np.random.default_rng(seed).random(r.shape) < nan] = np.nan
    ours, theirs = rf.perf_stats(r, cutoff=cutoff), _one_by_one(r, cutoff)
    assert list(ours) == list(METRICS)
    for name in METRICS:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-9, atol=1e-14, err_msg=name)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_matches_empyrical_column_by_column_on_a_frame() -> None:
    frame = pd.DataFrame(
        _returns(600, 40, 3),
        index=pd.bdate_range("2020-01-01", periods=600),
        columns=[f"s{j}" for j in range(40)],
    )
    stats = rf.perf_stats(frame)
    for name in METRICS:  # each has empyrical's function of the same name
        assert isinstance(stats[name], pd.Series) and list(stats[name].index) == list(frame)
        theirs = [getattr(ep, name)(frame[col]) for col in frame]
        np.testing.assert_allclose(stats[name], theirs, rtol=1e-9, atol=1e-14, err_msg=name)
    table = pd.DataFrame(stats)
    assert table.shape == (40, len(METRICS))


def test_shapes_follow_the_input() -> None:
    r = _returns(300, 3, 1)
    one = rf.perf_stats(r[:, 0])
    assert all(isinstance(v, float) for v in one.values())
    assert one["sharpe_ratio"] == pytest.approx(ep.sharpe_ratio(r[:, 0]), rel=1e-10)
    many = rf.perf_stats(r, period="monthly")
    assert all(v.shape == (3,) for v in many.values())
    np.testing.assert_allclose(many["sharpe_ratio"], rf.sharpe_ratio(r, period="monthly"))
    np.testing.assert_allclose(many["omega_ratio"], rf.omega_ratio(r, annualization=12), rtol=1e-12)
    assert np.isnan(rf.perf_stats(np.array([]))["sharpe_ratio"])
    row = rf.perf_stats(r[:1])
    assert np.isnan(row["sharpe_ratio"]).all() and np.isfinite(row["max_drawdown"]).all()
