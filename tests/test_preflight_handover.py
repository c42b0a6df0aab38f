"""runlab run builds its model once: the preflight's trainer, put back as built after its two
batches, is the one the run trains, and the run is bit for bit the run without a preflight."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from runlab.cli.main import main
from runlab.train import supervised

QUICK = str(Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml")


def _run(root: Path, *flags: str, capsys: pytest.CaptureFixture[str]) -> Path:
    with pytest.raises(SystemExit) as ended:
        main(["run", QUICK, "trainer.epochs=3", "optim.lr=0.01", "model.dropout=0.2",
              "-o", str(root), "-f", "json", *flags])  # fmt: skip
        raise SystemExit(0)
    assert ended.value.code in (0, None)
    return Path(json.loads(capsys.readouterr().out.splitlines()[-1])["run_dir"])


def test_the_preflight_trainer_is_the_run_trainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    built: list[int] = []
    real = supervised.SupervisedTrainer.__init__

    def counted(self: supervised.SupervisedTrainer, *args: object, **kwargs: object) -> None:
        built.append(1)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(supervised.SupervisedTrainer, "__init__", counted)
    with_preflight = _run(tmp_path / "a", capsys=capsys)
    assert len(built) == 1
    without = _run(tmp_path / "b", "--no-preflight", capsys=capsys)
    assert len(built) == 2
    ours = torch.load(with_preflight / "checkpoints" / "last.pt", weights_only=True)
    theirs = torch.load(without / "checkpoints" / "last.pt", weights_only=True)
    for name, tensor in theirs["model"].items():
        assert torch.equal(ours["model"][name], tensor), name
    assert ours["optimizer"]["state"].keys() == theirs["optimizer"]["state"].keys()
    for key, state in theirs["optimizer"]["state"].items():
        assert torch.equal(ours["optimizer"]["state"][key]["exp_avg"], state["exp_avg"])
    assert ours["history"] == theirs["history"]
    assert supervised._HANDED_OVER == []


def test_a_trainer_is_handed_over_only_to_its_own_config() -> None:
    trainer = object.__new__(supervised.SupervisedTrainer)
    trainer.cfg, trainer.data, trainer.seed, trainer.device = {}, object(), 1, "cpu"
    key = (id(trainer.cfg), id(trainer.data), 1, "cpu")
    supervised._HANDED_OVER[:] = [(key, trainer)]
    with pytest.raises(Exception):  # noqa: B017 - another config: a real build (of nothing)
        supervised.trainer_for({}, trainer.data, torch.device("cpu"), 1)
    assert supervised._HANDED_OVER == []  # taken once, whoever asked
