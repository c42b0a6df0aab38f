"""runlab run builds its model once: the preflight's trainer, rewound to as built after its two
batches, is the one the run trains, and the run is bit for bit the run without a preflight,
for the supervised and the episodic loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from runlab.cli.main import main
from runlab.train import episodic, handover, supervised

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CASES = {
    "supervised": (
        supervised.SupervisedTrainer,
        [str(EXAMPLES / "quickstart.yaml"), "trainer.epochs=3", "optim.lr=0.01",
         "model.dropout=0.2"],
    ),
    "episodic": (
        episodic.EpisodicTrainer,
        [str(EXAMPLES / "allocation.yaml"), "trainer.epochs=2"],
    ),
}  # fmt: skip


def _run(root: Path, args: list[str], *flags: str, capsys: pytest.CaptureFixture[str]) -> Path:
    with pytest.raises(SystemExit) as ended:
        main(["run", *args, "-o", str(root), "-f", "json", *flags])
        raise SystemExit(0)
    assert ended.value.code in (0, None)
    return Path(json.loads(capsys.readouterr().out.splitlines()[-1])["run_dir"])


@pytest.mark.parametrize("loop", sorted(CASES))
def test_the_preflight_trainer_is_the_run_trainer(
    loop: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cls, args = CASES[loop]
    built: list[int] = []
    real = cls.__init__

    def counted(self: object, *a: object, **kw: object) -> None:
        built.append(1)
        real(self, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(cls, "__init__", counted)
    with_preflight = _run(tmp_path / "a", args, capsys=capsys)
    assert len(built) == 1
    without = _run(tmp_path / "b", args, "--no-preflight", capsys=capsys)
    assert len(built) == 2
    ours = torch.load(with_preflight / "checkpoints" / "last.pt", weights_only=True)
    theirs = torch.load(without / "checkpoints" / "last.pt", weights_only=True)
    for name, tensor in theirs["model"].items():
        assert torch.equal(ours["model"][name], tensor), name
    assert ours["optimizer"]["state"].keys() == theirs["optimizer"]["state"].keys()
    for key, state in theirs["optimizer"]["state"].items():
        assert torch.equal(ours["optimizer"]["state"][key]["exp_avg"], state["exp_avg"])
    assert ours["history"] == theirs["history"]
    assert handover._SLOT == []


def test_a_trainer_is_handed_over_only_to_its_own_config() -> None:
    class Made:
        def __init__(self, cfg: object, data: object, device: object, seed: int) -> None:
            self.cfg, self.data, self.device, self.seed = cfg, data, device, seed

    held = Made({}, object(), "cpu", 1)
    handover.hand_over(held)
    assert handover.trainer_for(Made, held.cfg, held.data, "cpu", 1) is held
    handover.hand_over(held)
    other = handover.trainer_for(Made, {}, held.data, "cpu", 1)  # another config object
    assert other is not held and handover._SLOT == []  # taken once, whoever asked
    handover.hand_over(held)
    assert handover.trainer_for(Made, held.cfg, held.data, "cpu", 2) is not held
