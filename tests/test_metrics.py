"""The trainer's evaluators against independent implementations (pandas, NumPy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from runlab.train.losses import listnet, make_loss
from runlab.train.metrics import classification, ranking, regression

pd = pytest.importorskip("pandas")


def panel(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(12, 30, generator=g)
    pred = 0.3 * y + torch.randn(12, 30, generator=g)
    mask = torch.rand(12, 30, generator=g) > 0.15
    return pred, y, mask


def test_ic_and_rank_ic_match_pandas_per_date() -> None:
    pred, y, mask = panel()
    out = ranking(pred, y, mask)
    ic, ric = [], []
    for d in range(pred.shape[0]):
        m = mask[d].numpy()
        p, t = pd.Series(pred[d].numpy()[m]), pd.Series(y[d].numpy()[m])
        ic.append(p.corr(t))
        ric.append(p.rank().corr(t.rank()))  # Spearman: Pearson of the ranks
    assert out["_ic_by_date"].tolist() == pytest.approx(ic, abs=1e-5)
    assert out["_rank_ic_by_date"].tolist() == pytest.approx(ric, abs=1e-5)
    assert float(out["ic"]) == pytest.approx(np.mean(ic), abs=1e-6)
    assert float(out["ic_ir"]) == pytest.approx(np.mean(ic) / np.std(ic, ddof=1), rel=1e-4)
    flat_p, flat_y = pred[mask].numpy(), y[mask].numpy()
    assert float(out["scale"]) == pytest.approx(flat_p.std(ddof=1) / flat_y.std(ddof=1), rel=1e-5)


def test_collapsed_predictions_have_scale_zero_and_no_ic() -> None:
    _, y, mask = panel()
    out = ranking(torch.zeros_like(y), y, mask)
    assert float(out["scale"]) == 0.0 and torch.isnan(out["ic"])


def test_regression_and_classification_metrics() -> None:
    g = torch.Generator().manual_seed(1)
    y = torch.randn(200, generator=g)
    pred = y + 0.5 * torch.randn(200, generator=g)
    out = regression(pred, y, None)
    yn, pn = y.numpy(), pred.numpy()
    assert float(out["mse"]) == pytest.approx(np.mean((pn - yn) ** 2), rel=1e-5)
    r2 = 1 - np.sum((pn - yn) ** 2) / np.sum((yn - yn.mean()) ** 2)
    assert float(out["r2"]) == pytest.approx(r2, rel=1e-5)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1, 2, 0]), 3).float()
    out = classification(logits, labels, None)
    assert float(out["accuracy"]) == pytest.approx(4 / 6)
    f1 = [2 / 4, 4 / 5, 2 / 3]  # per class 2tp/(2tp+fp+fn): (1,1,1), (2,1,0), (1,0,1)
    assert float(out["f1"]) == pytest.approx(np.mean(f1), rel=1e-6)


def test_masked_losses_ignore_missing_pairs() -> None:
    pred, y, mask = panel()
    mse = make_loss("ranking", "mse")(pred, y, mask)
    assert float(mse) == pytest.approx(float(((pred - y)[mask] ** 2).mean()), rel=1e-6)
    garbage = pred.masked_fill(~mask, 1e6)
    assert float(listnet(garbage, y, mask)) == pytest.approx(float(listnet(pred, y, mask)))
    assert float(make_loss("ranking", "pairwise")(garbage, y, mask)) == pytest.approx(
        float(make_loss("ranking", "pairwise")(pred, y, mask))
    )


def test_trainer_ranking_metrics_are_runlab_finance_numbers_ties_included() -> None:
    import runlab.finance as rf

    _, y, mask = panel()
    tied = torch.round(y * 2)  # many tied predictions: ranks must be averaged
    out = ranking(tied, y, mask)
    p = np.where(mask.numpy(), tied.numpy(), np.nan)
    t = np.where(mask.numpy(), y.numpy(), np.nan)
    assert float(out["rank_ic"]) == pytest.approx(
        np.nanmean(rf.information_coefficient(p, t)), rel=1e-6
    )
    assert float(out["ic_ir"]) == pytest.approx(
        rf.ic_summary(rf.information_coefficient(p, t, method="pearson"))["ir"], rel=1e-6
    )
