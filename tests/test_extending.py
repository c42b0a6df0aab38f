"""The worked examples of docs/extending.md, run as a user would: each one file under
examples/plugins, used by import path and by short name through a real entry point (a
dist-info folder on the path, read by importlib.metadata), and each passing its role's
contract suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from examples.plugins.csv_sink import CsvSink
from examples.plugins.nice_launcher import NiceLauncher

from runlab.contracts.launchers import LauncherContract
from runlab.contracts.loops import LoopContract
from runlab.contracts.sinks import SinkContract
from runlab.tracking.record import RunRecord, load_runs

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "examples" / "quickstart.yaml")
SMALL = ["data.n_samples=400", "model.hidden=[8]", "trainer.epochs=3"]


class TestCsvSinkContract(SinkContract):
    def make_sink(self, tmp_path: Path) -> CsvSink:
        return CsvSink({"folder": str(tmp_path / "csv"), "timeout": 10.0})


@pytest.mark.slow  # a LocalLauncher subclass: the local launcher's run is in the default suite
class TestNiceLauncherContract(LauncherContract):
    def make_launcher(self, jobs: int) -> NiceLauncher:
        return NiceLauncher(jobs=jobs, niceness=3)


class TestLinearLoopContract(LoopContract):
    def config(self, tmp_path: Path) -> dict[str, Any]:
        return {
            "data": {"source": "synthetic.regression", "n_samples": 300, "n_features": 4},
            "loop": "examples.plugins.linear_loop:LinearLoop",
            "trainer": {"epochs": 3},
        }


def test_the_csv_sink_mirrors_a_run(cli, root: Path) -> None:
    code, out, err = cli(
        "run", QUICK, *SMALL, "--sink", "examples.plugins.csv_sink:CsvSink", "-o", root
    )
    assert code == 0, err
    run = RunRecord(out.splitlines()[-1])
    rows = (run.path / "csv" / f"{run.id}.csv").read_text().splitlines()
    assert rows[0].split(",")[:2] == ["epoch", "epoch/epoch_time_s"]
    assert len(rows) == 1 + 3  # one row per epoch
    info = json.loads((run.path / "run.json").read_text())
    assert info["sinks"]["examples.plugins.csv_sink:CsvSink"] == {"folder": None, "timeout": 10.0}


def test_a_bad_option_of_a_plugin_sink_is_one_line(cli, root: Path) -> None:
    code, _, err = cli("run", QUICK, "+examples.plugins.csv_sink:CsvSink.foldr=x", "-o", root)
    assert code == 2 and err.count("\n") == 1, err


def test_the_nice_launcher_runs_a_sweep_at_a_lower_priority(cli, root: Path) -> None:
    code, _, err = cli(
        "sweep",
        QUICK,
        "loop=tests.helpers:niceness_loop",
        "+x=1,2",
        "-j",
        "2",
        "--launcher",
        "examples.plugins.nice_launcher:NiceLauncher",
        "--launcher-opt",
        "niceness=7",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 0, err
    runs = load_runs(root)
    assert len(runs) == 2
    base = os.nice(0)
    assert [r.metrics["niceness"] for r in runs] == [min(19, base + 7)] * 2
    code, _, err = cli(
        "sweep",
        QUICK,
        "+x=1,2",
        "--launcher",
        "examples.plugins.nice_launcher:NiceLauncher",
        "--launcher-opt",
        "niceness=40",
        "-o",
        root,
    )
    assert code == 2 and "launcher.niceness" in err and err.count("\n") == 1, err


def test_the_linear_loop_trains_and_resumes_from_the_cli(cli, root: Path) -> None:
    loop = "loop=examples.plugins.linear_loop:LinearLoop"
    code, out, err = cli("run", QUICK, loop, "trainer.epochs=2", "-o", root)
    assert code == 0, err
    run_dir = out.splitlines()[-1]
    code, out, err = cli("run", "--resume", run_dir, "trainer.epochs=4", "-o", root)
    assert code == 0, err
    epochs = [int(r["epoch"]) for r in RunRecord(run_dir).scalars() if r["split"] == "val"]
    assert epochs == [1, 2, 3, 4]


def test_the_sign_evaluator_is_maximised(cli, root: Path) -> None:
    code, out, err = cli(
        "run",
        QUICK,
        *SMALL,
        "trainer.epochs=4",
        "evaluate=[regression,examples.plugins.sign_evaluator:sign_accuracy]",
        "trainer.monitor=val.sign_accuracy",
        "-o",
        root,
    )
    assert code == 0, err
    run = RunRecord(out.splitlines()[-1])
    values = [float(r["sign_accuracy"]) for r in run.scalars() if r["split"] == "val"]
    assert run.metrics["best"] == max(values)  # best.pt is the highest, as `metrics` declares
    assert run.metrics["best_epoch"] == 1 + values.index(max(values))


ENTRY_POINTS = """\
[runlab.sinks]
csv = examples.plugins.csv_sink:CsvSink

[runlab.launchers]
nice = examples.plugins.nice_launcher:NiceLauncher

[runlab.loops]
linear = examples.plugins.linear_loop:LinearLoop

[runlab.evaluators]
sign = examples.plugins.sign_evaluator:sign_accuracy
"""


def test_plugins_by_short_name_through_entry_points(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = site / "runlab_examples-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: runlab-examples\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    root = tmp_path / "runs"

    def runlab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runlab", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )

    done = runlab(
        "run",
        QUICK,
        "loop=linear",
        "--sink",
        "csv",
        "evaluate=[regression,sign]",
        "trainer.epochs=2",
        "-o",
        str(root),
    )
    assert done.returncode == 0, done.stderr
    run = RunRecord(done.stdout.strip())
    assert (run.path / "csv" / f"{run.id}.csv").exists()
    done = runlab(
        "sweep",
        QUICK,
        "loop=linear",
        "trainer.epochs=1,2",
        "--launcher",
        "nice",
        "-o",
        str(root),
        "-f",
        "json",
    )
    assert done.returncode == 0, done.stderr
    done = runlab("run", QUICK, "loop=lineer", "-o", str(root))
    assert done.returncode == 2
    assert "unknown loop 'lineer' (did you mean 'linear'?)" in done.stderr, done.stderr
    assert "supervised, episodic, ppo, linear" in done.stderr
    help_text = runlab("sweep", "--help").stdout
    assert "--launcher-opt" in help_text


@pytest.mark.parametrize("role", ["sink", "launcher", "loop"])
def test_registry_lists_the_built_ins_without_importing_them(role: str) -> None:
    code = (
        "import sys\n"
        "from runlab.sinks.base import SINKS\n"
        "from runlab.sweep.launchers import LAUNCHERS\n"
        "from runlab.train.loops import LOOPS\n"
        f"names = {{'sink': SINKS, 'launcher': LAUNCHERS, 'loop': LOOPS}}[{role!r}].names()\n"
        "heavy = [m for m in ('torch', 'ray', 'wandb', 'mlflow', 'tensorboard') "
        "if m in sys.modules]\n"
        "print(names, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]"), done.stdout


def test_every_built_in_sink_has_its_config_block() -> None:
    from runlab.config.schema import SINK_CONFIGS
    from runlab.sinks.builtin import SINK_NAMES

    assert tuple(SINK_CONFIGS) == SINK_NAMES
