"""The secret scan: secrets planted in a config file, in an interpolation that copies one, in a
URL, on the command line and in tags; runs trained, swept, tuned and mirrored to TensorBoard,
W&B (offline) and MLflow; then every byte under the test's folder (run directories, index,
sweeps, studies, Optuna's database, the mirrors' stores and logs) and what the read commands
print are searched for each planted secret. None may be found."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runlab

pytest.importorskip("mlflow")
pytest.importorskip("wandb")
pytest.importorskip("tensorboard")
pytest.importorskip("optuna")

IN_FILE = "Zq7file-s3cr3t-41"
IN_URL = "Urlpass-9x8y7z"
ON_COMMAND_LINE = "CmdLine-k3y-5521"
IN_TAGS = "TagTok-77aa-99bb"
PLANTED = (IN_FILE, IN_URL, ON_COMMAND_LINE, IN_TAGS)

CONFIG = f"""
data: {{source: synthetic.regression, n_samples: 256}}
model: {{hidden: [8]}}
trainer: {{epochs: 1, batch_size: 64}}
sinks: [tensorboard, wandb, mlflow]
db:
  password: {IN_FILE}
  url: postgresql://me:{IN_URL}@db.example/prices
notes: "connect with ${{db.password}} to ${{db.url}}"
"""


def _scan(folder: Path, skip: Path) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and skip not in path.parents:
            data = path.read_bytes()
            hits += [f"{path}: {s}" for s in PLANTED if s.encode() in data]
    return hits


def test_no_planted_secret_is_written_mirrored_or_shown(
    cli: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    given = tmp_path / "input"  # the user's own file: not scanned
    given.mkdir()
    config = str(given / "c.yaml")
    Path(config).write_text(CONFIG)
    root = tmp_path / "runs"
    secret_override = f"+service.api_key={ON_COMMAND_LINE}"
    code, out, err = cli("run", config, secret_override, "-o", root, "-f", "json")
    assert code == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    code, _, err = cli("sweep", config, "optim.lr=0.01", secret_override, "-o", root)
    assert code == 0, err
    code, _, err = cli(
        "tune", config, "optim.lr=interval(0.001,0.1)", secret_override, "--trials", "1",
        "-o", root,
    )  # fmt: skip
    assert code == 0, err
    tags = {"auth_token": IN_TAGS, "source": f"https://u:{IN_TAGS}@git.example/repo"}
    with runlab.start_run({"lr": 0.1}, root=root, tags=tags, sinks=["mlflow", "wandb"]) as run:
        run.log_epoch(0, {"val": {"loss": 1.0}})
    code, _, err = cli("sync", root, "--sink", "tensorboard", "--force")
    assert code == 0, err

    # what the read commands show
    shown = []
    for args in (
        ["show", run_dir.name, "--root", root, "-f", "json"],
        ["ls", root, "--columns", "id,config.db.password,config.notes,tags", "-f", "json"],
        ["export", root],
        ["compare", run_dir.name, run.id, "--root", root, "-f", "json"],
    ):
        code, out, err = cli(*args)
        assert code == 0, (args, err)
        shown.append(out)
    leaks = [s for s in PLANTED for text in shown if s in text] + _scan(tmp_path, given)
    assert leaks == []
    # the redacted copies are there, marked
    written = runlab.RunRecord(run_dir).config
    assert written["notes"] == "connect with *** to postgresql://me:***@db.example/prices"
    assert written["service"]["api_key"] == "***"
    assert list(tmp_path.glob("mlruns/*/*/artifacts/config.yaml")) != []  # scanned too


@pytest.mark.parametrize(
    "where", ['config.db.password == "guess"', "config.service.api_key != 1", "tags.auth_token"]
)
def test_secrets_cannot_be_filtered_or_sorted_on(
    cli: Callable[..., Any], tmp_path: Path, where: str
) -> None:
    """A filter on a secret would confirm a guess: refused, in one line."""
    root = tmp_path / "runs"
    with runlab.start_run({"db": {"password": "pw-123456"}}, root=root):
        pass
    code, _, err = cli("ls", root, "--where", where)
    assert code == 2 and err.count("\n") == 1 and "is a secret" in err, err
    code, _, err = cli("ls", root, "--sort", "config.db.password")
    assert code == 2 and "is a secret" in err, err
