"""What seed 003's trading runs ask of `runlab run`: tags from the command line, queryable;
a run started from another run's weights (trainer.init_from), recorded in run.json."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import runlab

REPO = Path(__file__).resolve().parents[1]
QUICK = [str(REPO / "examples" / "quickstart.yaml"), "data.n_samples=400", "model.hidden=[8]"]


def run_json(cli, *args: str) -> tuple[int, dict, str]:
    code, out, err = cli("run", *QUICK, *args, "--no-preflight", "-f", "json")
    return code, (json.loads(out) if code == 0 else {}), err


def test_tags_from_the_command_line_over_the_config(cli, root: Path) -> None:
    code, out, err = run_json(
        cli,
        "+tags.desk=stat_arb",
        "--tag",
        "pair=AAPL_AMZN",
        "-t",
        "n=3",
        "-t",
        "desk=macro",
        "trainer.epochs=1",
        "-o",
        str(root),
    )
    assert code == 0, err
    record = runlab.RunRecord(out["run_dir"])
    assert record.tags == {"desk": "macro", "pair": "AAPL_AMZN", "n": 3}
    code, listed, err = cli(
        "ls", str(root), "-w", 'tags.pair == "AAPL_AMZN" and tags.n > 2', "-f", "json"
    )
    assert code == 0, err
    assert [r["id"] for r in json.loads(listed)] == [record.id]
    for bad in ("pair", "=x", "a b=1"):
        code, _, err = run_json(cli, "--tag", bad, "-o", str(root))
        assert code == 2 and err.count("\n") == 1 and "--tag" in err, (bad, err)


def test_init_from_another_runs_snapshot(cli, root: Path) -> None:
    code, first, err = run_json(
        cli, "trainer.epochs=2", "checkpoint.keep=true", "--run-name", "base", "-o", str(root)
    )
    assert code == 0, err
    base = Path(first["run_dir"])
    # lr 0: the weights the second run ends with are the ones it started from
    code, second, err = cli(
        "run",
        *QUICK,
        "trainer.epochs=1",
        "optim.lr=0",
        "trainer.init_from=base:1",
        "-o",
        str(root),
        "-f",
        "json",
    )
    assert code == 0, err
    started = Path(json.loads(second)["run_dir"])
    a = torch.load(base / "checkpoints" / "epoch_0001.pt", weights_only=True)["model"]
    b = torch.load(started / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    info = json.loads((started / "run.json").read_text())["init_from"]
    assert info["run"] == base.name and info["checkpoint"] == "epoch_0001"
    assert runlab.RunRecord(started).events("on_init_from")[0]["run"] == base.name
    before = sorted(p.name for p in root.iterdir())
    for args, expected in (
        (["trainer.init_from=base:epoch_0009"], "has no checkpoints/epoch_0009.pt"),
        (["trainer.init_from=nosuchrun"], "trainer.init_from 'nosuchrun'"),
        (["trainer.init_from=base", "model.hidden=[5]"], "does not fit this model"),
    ):
        code, _, err = cli("run", *QUICK, *args, "-o", str(root))
        assert code == 2 and err.count("\n") == 1 and expected in err, (args, err)
    assert sorted(p.name for p in root.iterdir()) == before  # nothing made
