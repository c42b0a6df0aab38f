"""The examples run, so the README cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import runlab

REPO = Path(__file__).resolve().parents[1]


def test_track_custom_loop_example(root: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "track_custom_loop.py"),
            "--root",
            str(root),
            "--epochs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1].removeprefix("run directory: "))
    record = runlab.RunRecord(run_dir)
    assert record.state is runlab.RunState.FINISHED
    assert [r["epoch"] for r in record.scalars()] == [0, 0, 1, 1]
    assert len(record.steps()) == 2 * 32  # 2048 samples / batch 64
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert record.metrics["best_epoch"] in (0, 1)
    assert "epoch 2/2" in record.stdout()


def test_gated_example_against_its_baseline(cli, root: Path) -> None:
    examples = REPO / "examples"
    code, _, err = cli("run", examples / "ranking_panel.yaml", "trainer.epochs=3", "-o", root)
    assert code == 0, err
    code, _, err = cli(
        "run",
        examples / "gated.yaml",
        "trainer.epochs=3",
        "-o",
        root,
        "--baseline",
        "ranking_panel",
    )
    assert code == 0, err
    (record,) = runlab.load_runs(root, where='name == "gated"')
    base = runlab.load_runs(root, where='name == "ranking_panel"')[0]
    gates = {g["name"]: g for g in record.metrics["gates"]}
    assert set(gates) == {"variance_restored", "beats_baseline", "no_divergence"}
    assert all(g["status"] in ("passed", "failed") for g in gates.values())
    base_ic = [r["rank_ic"] for r in base.scalars() if r["split"] == "val"][2]
    assert gates["beats_baseline"]["values"]["baseline.val.rank_ic"] == base_ic


def test_the_example_flow_runs_then_is_all_cached(tmp_path: Path) -> None:
    import shutil

    work = tmp_path / "flow"
    shutil.copytree(REPO / "examples" / "flow", work)
    runs = str(tmp_path / "runs")
    command = [sys.executable, "-m", "runlab", "flow", str(work / "flow.yaml"), "-r", runs]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0
    said = [line.split(" in ")[0] for line in second.stderr.splitlines() if ": " in line]
    assert said == ["data: cached", "train: cached", "good_enough: done", "bundle: cached"]
