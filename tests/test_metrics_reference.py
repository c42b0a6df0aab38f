"""The trainer's regression and classification metrics against scikit-learn over inputs that
Hypothesis varies: rows (one included), outputs, constant targets, classes never predicted."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from runlab.train.metrics import classification, regression

skm = pytest.importorskip("sklearn.metrics")

values = st.floats(-100, 100, width=32, allow_subnormal=False)
fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def regression_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 40))
    k = draw(st.sampled_from([None, 1, 2, 4]))
    shape = (n,) if k is None else (n, k)
    y = draw(arrays(np.float32, shape, elements=values))
    if draw(st.booleans()):  # sometimes a perfect or constant column
        y[..., 0] = y.reshape(n, -1)[0, 0]
    pred = draw(st.one_of(st.just(y.copy()), arrays(np.float32, shape, elements=values)))
    return y, pred


@fast
@given(regression_case())
def test_regression_metrics_match_sklearn(case: tuple[np.ndarray, np.ndarray]) -> None:
    y, pred = case
    y64, p64 = y.astype(np.float64), pred.astype(np.float64)
    cols_y, cols_p = y64.reshape(len(y), -1), p64.reshape(len(y), -1)
    # float32 sums: skip targets whose spread is lost in rounding (sklearn works in float64)
    spread = cols_y.std(0)
    assume(all(s == 0 or s > 1e-2 * (1 + np.abs(cols_y).max()) for s in spread))
    out = regression(torch.from_numpy(pred), torch.from_numpy(y), None)
    tol = {"rel": 1e-4, "abs": 1e-3}
    assert float(out["mse"]) == pytest.approx(skm.mean_squared_error(y64, p64), **tol)
    assert float(out["mae"]) == pytest.approx(skm.mean_absolute_error(y64, p64), **tol)
    if len(y) < 2:
        assert math.isnan(float(out["r2"]))  # sklearn: undefined for one sample
    else:
        assert float(out["r2"]) == pytest.approx(skm.r2_score(y64, p64), **tol)
    if y.ndim == 2 and y.shape[1] > 1 and len(y) > 1:
        raw = skm.r2_score(cols_y, cols_p, multioutput="raw_values")
        got = [float(out[f"r2_{i}"]) for i in range(y.shape[1])]
        assert got == pytest.approx(list(raw), **tol)


@fast
@given(
    st.integers(1, 60).flatmap(
        lambda n: st.tuples(
            arrays(np.int64, n, elements=st.integers(0, 3)),
            arrays(np.int64, n, elements=st.integers(0, 3)),
        )
    )
)
def test_classification_metrics_match_sklearn(case: tuple[np.ndarray, np.ndarray]) -> None:
    labels, guess = case
    logits = torch.nn.functional.one_hot(torch.from_numpy(guess), 4).float()
    out = classification(logits, torch.from_numpy(labels), None)
    assert float(out["accuracy"]) == pytest.approx(skm.accuracy_score(labels, guess))
    # macro F1 over the classes that occur in the labels or the predictions, as sklearn does
    assert float(out["f1"]) == pytest.approx(
        skm.f1_score(labels, guess, average="macro", zero_division=0.0), rel=1e-6
    )
