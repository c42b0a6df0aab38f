"""runlab importance and the study page's importance, on a real study made by runlab tune:
the numbers are Optuna's own evaluator's on the same study (read back with Optuna), a planted
signal comes out on top, and bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("optuna")
REPO = Path(__file__).resolve().parents[1]


def _cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runlab", *map(str, args)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A study of 30 random trials of val.loss = (x - 0.3)^2 + 0.001 y, and one of 1 trial."""
    folder = tmp_path_factory.mktemp("importance")
    config = folder / "bowl.yaml"
    config.write_text(
        "data: {source: synthetic.regression, n_samples: 64}\nmodel: {hidden: [4]}\n"
        "trainer: {epochs: 1}\nloop: tests.helpers:bowl_loop\n"
    )
    root = folder / "runs"
    for name, trials in (("bowl", 30), ("tiny", 1)):
        done = _cli("tune", config, "+x=interval(0,1)", "+y=interval(0,1)", "--in-process",
                    "-n", trials, "--sampler", "random", "--seed", 1, "-o", root,
                    "--study-name", name, "-f", "json")  # fmt: skip
        assert done.returncode == 0, done.stderr
    return {"root": root}


def test_the_numbers_are_optunas_own_and_the_planted_signal_leads(study: dict[str, Any]) -> None:
    import optuna

    root = study["root"]
    storage = f"sqlite:///{root / 'studies' / 'optuna.db'}"
    reference_study = optuna.load_study(study_name="bowl", storage=storage)
    for evaluator, cls, kwargs in [
        ("fanova", optuna.importance.FanovaImportanceEvaluator, {"seed": 0}),
        ("mdi", optuna.importance.MeanDecreaseImpurityImportanceEvaluator, {"seed": 0}),
        ("ped-anova", optuna.importance.PedAnovaImportanceEvaluator, {}),
    ]:
        done = _cli("importance", "bowl", "-o", root, "--evaluator", evaluator, "-f", "json")
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        reference = optuna.importance.get_param_importances(
            reference_study, evaluator=cls(**kwargs)
        )
        assert list(found["importances"]) == list(reference)  # largest first, as Optuna ranks
        for key, value in reference.items():
            assert found["importances"][key] == pytest.approx(value)
        assert found["trials"] == 30 and found["objective"] == "val.loss"
    fanova = json.loads(_cli("importance", "bowl", "-o", root, "-f", "json").stdout)
    assert list(fanova["importances"]) == ["+x", "+y"] and fanova["importances"]["+x"] > 0.9
    table = _cli("importance", "bowl", "-o", root)
    assert table.returncode == 0 and "fanova over 30 finished trials" in table.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["nosuch"], "no study 'nosuch'"),
        (["tiny"], "needs 2 finished trials, it has 1"),
        (["bowl", "--evaluator", "shap"], "--evaluator 'shap'"),
        (["bowl", "--objective", "val.r2"], "the study's are val.loss"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    study: dict[str, Any], args: list[str], words: str
) -> None:
    done = _cli("importance", *args, "-o", study["root"])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr


def test_the_dashboards_importance(study: dict[str, Any]) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from runlab.web.app import create_app

    client = TestClient(create_app(study["root"], "t" * 20))
    found = client.get("/api/studies/study/bowl/importance").json()
    cli = json.loads(_cli("importance", "bowl", "-o", study["root"], "-f", "json").stdout)
    assert found["importances"] == pytest.approx(cli["importances"])
    tiny = client.get("/api/studies/study/tiny/importance").json()
    assert tiny["importances"] == {} and "needs 2 finished trials" in tiny["reason"]
    assert client.get("/api/studies/study/..%2f..%2fetc/importance").status_code == 404
