"""What seed 002's Hydra-style project asks of runlab: modules in the working directory import
without PYTHONPATH (models, data functions, loops, rewards), a `_target_` nested in the model's
arguments is instantiated recursively, and a loop that loads its own data needs no
data.source; what it returns lands in metrics.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import runlab

PROJECT = {
    "mymodels.py": """
        import torch
        from torch import nn

        class Encoder(nn.Module):
            def __init__(self, width: int, depth: int = 1):
                super().__init__()
                self.width = width
                self.net = nn.Sequential(*[nn.LazyLinear(width) for _ in range(depth)])

            def forward(self, x):
                return torch.relu(self.net(x))

        class Net(nn.Module):
            def __init__(self, encoder: nn.Module, in_features: int, out_features: int):
                super().__init__()
                self.encoder = encoder
                self.head = nn.Linear(encoder.width, out_features)
                encoder(torch.zeros(1, in_features))  # materialise the lazy layers

            def forward(self, x):
                return self.head(self.encoder(x))
    """,
    "mydata.py": """
        import numpy as np

        def make(n: int = 300):
            rng = np.random.default_rng(0)
            x = rng.normal(size=(n, 4)).astype("float32")
            y = (x @ np.arange(1, 5)).astype("float32")
            return {"X_train": x[:200], "y_train": y[:200], "X_val": x[200:], "y_val": y[200:]}
    """,
    "myloop.py": """
        def train(cfg, run):
            for epoch in (1, 2):
                run.log_epoch(epoch, {"train": {"loss": 1.0 / epoch}})
            return {"score": 0.75, "notes": "loaded its own data"}
    """,
}
CONFIG = """
data:
  source: mydata:make
  kwargs: {n: 300}
model:
  _target_: mymodels.Net
  encoder:
    _target_: mymodels.Encoder
    width: 6
    depth: 2
trainer: {epochs: 1, batch_size: 32}
"""


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    for name, code in PROJECT.items():
        (folder / name).write_text(textwrap.dedent(code))
    (folder / "train.yaml").write_text(CONFIG)
    (folder / "own_loop.yaml").write_text("loop: myloop:train\n")
    return folder


def _runlab(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, from the project's folder, without PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = shutil.which("runlab", path=str(Path(sys.executable).parent))
    assert script is not None
    return subprocess.run(
        [script, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_hydra_style_project_runs_from_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    folder = _project(tmp_path)
    done = _runlab(folder, "run", "train.yaml", "-o", "runs", "-f", "json")
    assert done.returncode == 0, done.stderr
    run = runlab.RunRecord(folder / json.loads(done.stdout)["run_dir"])
    assert run.state is runlab.RunState.FINISHED
    monkeypatch.syspath_prepend(str(folder))  # this process loads the model: mymodels too
    loaded = runlab.load_model(run.path)  # the nested encoder is rebuilt from the checkpoint
    assert type(loaded.model.encoder).__name__ == "Encoder"  # type: ignore[union-attr]
    assert len(loaded.model.encoder.net) == 2  # type: ignore[union-attr, arg-type]
    monkeypatch.chdir(folder)  # a loop that loads its own data (in this process: faster)
    code, out, err = cli("run", "own_loop.yaml", "-o", "runs", "-f", "json")
    assert code == 0, err
    m = runlab.RunRecord(folder / json.loads(out)["run_dir"]).metrics
    assert m["score"] == 0.75 and m["notes"] == "loaded its own data"


def test_nested_target_errors_are_one_line(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _project(tmp_path)
    monkeypatch.chdir(folder)  # in this process: the project's folder importable for the test
    monkeypatch.syspath_prepend(str(folder))
    code, _, err = cli("run", "train.yaml", "model.encoder._target_=mymodels.Nope", "-o", "r")
    assert code == 2 and err.count("\n") == 1, err
    assert "model.encoder" in err and "Nope" in err
    assert not (folder / "r").exists() or not list((folder / "r").glob("2*"))
    code, _, err = cli("run", "train.yaml", "~data.source", "-o", "r")
    assert code == 2 and "data.source is missing" in err


def test_experiment_configs_in_a_sub_folder_and_the_runs_root_from_an_env_group(
    tmp_path: Path, cli
) -> None:
    """The seed's configs/phase1/experiment/*.yaml point back at the main config (``- /config``)
    and compose from the root; ``env=cluster`` sets where runs go."""
    configs = tmp_path / "configs"
    for name, text in {
        "config.yaml": "defaults:\n  - trainer: short\n  - optional env: local\n  - _self_\n"
        "data: {source: synthetic.regression, n_samples: 300}\nmodel: {hidden: [8]}\n",
        "trainer/short.yaml": "epochs: 1\nbatch_size: 64\n",
        "trainer/long.yaml": "epochs: 2\nbatch_size: 32\n",
        "env/local.yaml": "# @package _global_\ntags: {env: local}\n",
        "env/cluster.yaml": f"# @package _global_\nruns_root: {tmp_path / 'scratch'}\n"
        "tags: {env: cluster}\n",
        "phase1/experiment/compare.yaml": "# @package _global_\ndefaults:\n  - /config\n"
        "  - override /trainer: long\n  - _self_\nmodel: {hidden: [4]}\n",
    }.items():
        (configs / name).parent.mkdir(parents=True, exist_ok=True)
        (configs / name).write_text(text)
    experiment = configs / "phase1" / "experiment" / "compare.yaml"
    code, out, err = cli("run", experiment, "env=cluster", "--no-preflight", "-f", "json")
    assert code == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    assert run_dir.parent == tmp_path / "scratch"  # the env group's runs_root
    record = runlab.RunRecord(run_dir)
    assert record.config["trainer"]["epochs"] == 2 and record.config["model"]["hidden"] == [4]
    assert record.tags == {"env": "cluster"}
    code, out, err = cli(  # -o wins over the config
        "run",
        experiment,
        "env=cluster",
        "trainer=short",
        "-o",
        tmp_path / "mine",
        "--no-preflight",
        "-f",
        "json",
    )
    assert code == 0, err
    assert Path(json.loads(out)["run_dir"]).parent == tmp_path / "mine"
    assert runlab.RunRecord(json.loads(out)["run_dir"]).config["trainer"]["epochs"] == 1
    # runlab sweep and tune read it the same way, leaving the swept values out
    from runlab.config import config_runs_root

    root = config_runs_root(experiment, ["env=cluster", "optim.lr=0.1,0.01", "x=range(1,3)"])
    assert root == str(tmp_path / "scratch")
    assert config_runs_root(experiment, ["env=local"]) is None


def test_no_save_writes_nothing_but_stdout(tmp_path: Path, cli) -> None:
    """The seed's logging.save_artifacts=false: an ephemeral run leaves no file behind, in the
    working directory, the runs root or the temporary folder."""
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RUNLAB_ROOT")}
    script = shutil.which("runlab", path=str(Path(sys.executable).parent))
    assert script is not None
    quick = str(Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml")
    done = subprocess.run(
        [script, "run", quick, "trainer.epochs=2", "data.n_samples=300", "--no-save"],
        cwd=work,
        env={**env, "TMPDIR": str(tmp), "MPLCONFIGDIR": str(tmp_path / "mpl")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "nothing kept" in done.stdout and "val_loss:" in done.stdout
    assert "epoch 2/2" in done.stdout
    assert list(work.iterdir()) == []
    # torch's own (empty) cache folder, made by any optimizer step, is not runlab's
    left = [p for p in tmp.rglob("*") if not p.name.startswith("torchinductor_")]
    assert left == [], left
    for args, expected in (
        (["-o", str(work / "x")], "drop --output-dir"),
        (["sinks=[tensorboard]"], "drop them"),
    ):
        code, _, err = cli("run", quick, "--no-save", *args)  # refused: in this process
        assert code == 2 and expected in err, err
    assert list(work.iterdir()) == []
