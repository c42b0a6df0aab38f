"""What start_run writes: the run-directory contract of DESIGN.md."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import runlab
from runlab.errors import ConfigError
from runlab.tracking.scalars import read_scalars


def test_layout_and_files(root: Path) -> None:
    cfg = {"optim": {"lr": 1e-3}, "model": {"depth": 2}}
    with runlab.start_run(config=cfg, root=root, name="exp", tags={"pair": "AAPL_AMZN"}) as run:
        run.log({"loss": 1.0, "lr": 1e-3}, step=0)
        run.log_epoch(0, {"train": {"loss": 0.9}, "val": {"loss": 1.1, "sharpe": 0.2}}, lr=1e-3)
        run.summary.update(best_epoch=0)
        run.checkpoint_path("best").write_bytes(b"x")
    d = run.dir
    assert d.parent == root
    assert re.fullmatch(r"\d{8}-\d{6}-exp-[0-9a-f]{4}", run.id)
    for name in (
        "run.json",
        "config.yaml",
        "overrides.yaml",
        "metrics.json",
        "events.jsonl",
        "scalars.csv",
        "steps.jsonl",
        "heartbeat.json",
        "stdout.log",
    ):
        assert (d / name).is_file(), name
    assert (d / "checkpoints" / "best.pt").is_file()
    info = json.loads((d / "run.json").read_text())
    assert info["status"] == "finished" and info["name"] == "exp"
    assert info["tags"] == {"pair": "AAPL_AMZN"}
    assert info["started"] <= info["ended"] and info["duration_seconds"] >= 0
    assert yaml.safe_load((d / "config.yaml").read_text()) == cfg
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["best_epoch"] == 0 and metrics["val_sharpe"] == 0.2
    assert metrics["duration_seconds"] >= 0
    events = [json.loads(x) for x in (d / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["on_start", "on_epoch_end", "on_train_end"]
    assert events[-1]["status"] == "finished"
    # nothing left behind by atomic writes
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]


def test_run_ids_sort_by_creation_time(root: Path) -> None:
    ids = []
    for name in ("b", "a"):
        with runlab.start_run(root=root, name=name, capture_stdout=False) as run:
            ids.append(run.id)
        time.sleep(1.05)  # the id has second resolution
    assert sorted(ids) == ids


def test_names_are_made_safe_for_directories(root: Path) -> None:
    with runlab.start_run(root=root, name="../a b/c", capture_stdout=False) as run:
        pass
    assert run.dir.parent == root and "a-b-c" in run.id


def test_scalars_csv_grows_columns_and_keeps_rows(root: Path) -> None:
    with runlab.start_run(root=root, capture_stdout=False) as run:
        run.log_epoch(0, {"train": {"loss": 1.0}}, lr=0.1)
        run.log_epoch(1, {"train": {"loss": 0.5}, "val": {"loss": 0.7, "ic": 0.03}}, lr=0.05)
        run.log_epoch(2, {"train": {"loss": 0.4}, "val": {"loss": 0.6, "ic": 0.04}}, lr=0.05)
    header = (run.dir / "scalars.csv").read_text().splitlines()[0]
    assert header == "epoch,split,loss,ic,lr"  # lr stays last, new metric before it
    rows = read_scalars(run.dir / "scalars.csv")
    assert [(r["epoch"], r["split"]) for r in rows] == [
        (0, "train"),
        (1, "train"),
        (1, "val"),
        (2, "train"),
        (2, "val"),
    ]
    assert rows[0]["ic"] is None and rows[2]["ic"] == 0.03 and rows[0]["lr"] == 0.1


def test_user_summary_keys_win_over_last_values(root: Path) -> None:
    with runlab.start_run(root=root, capture_stdout=False) as run:
        run.summary["val_loss"] = 0.1  # the best, set by the user
        run.log_epoch(0, {"val": {"loss": 0.5}})
    assert run.summary["val_loss"] == 0.1
    assert json.loads((run.dir / "metrics.json").read_text())["val_loss"] == 0.1


def test_steps_auto_increment_and_numpy_scalars(root: Path) -> None:
    np = pytest.importorskip("numpy")
    with runlab.start_run(root=root, capture_stdout=False) as run:
        run.log({"loss": np.float32(0.5)})
        run.log({"loss": np.float64(0.25), "vec": np.arange(2)})
        run.log({"loss": 0.1}, step=10)
        run.log({"loss": 0.2})
    steps = runlab.RunRecord(run.dir).steps()
    assert [s["step"] for s in steps] == [0, 1, 10, 11]
    assert steps[0]["loss"] == 0.5 and steps[1]["vec"] == [0, 1]


def test_secrets_are_redacted_at_any_depth(root: Path) -> None:
    cfg = {
        "wandb": {"api_key": "k1", "API_KEY2": "k2"},
        "db": {"Password": "p", "nested": [{"auth_token": "t"}]},
        "aws_secret_access_key": "s",
        "credentials_file": "c",
        "apikey": "a",
        "hfToken": "h",
        "GITHUB_TOKEN": "g",
        "tokenizer": "bpe",
        "max_tokens": 512,
        "tokens_per_sec": 10.0,
        "lr": 0.1,
    }
    with runlab.start_run(config=cfg, root=root, capture_stdout=False) as run:
        pass
    text = (run.dir / "config.yaml").read_text()
    for secret in ("k1", "k2", ": p\n", ": t\n", ": s\n", ": c\n", ": a\n", ": h\n", ": g\n"):
        assert secret not in text
    saved = yaml.safe_load(text)
    assert saved["wandb"] == {"api_key": "***", "API_KEY2": "***"}
    assert saved["db"]["nested"][0]["auth_token"] == "***"
    assert saved["lr"] == 0.1
    assert saved["hfToken"] == saved["GITHUB_TOKEN"] == saved["aws_secret_access_key"] == "***"
    # 'token' is matched as a word: these hyper-parameters are not secrets
    assert (saved["tokenizer"], saved["max_tokens"], saved["tokens_per_sec"]) == ("bpe", 512, 10.0)
    # the live handle keeps the real values for the program itself
    assert run.config["wandb"]["api_key"] == "k1"


@dataclasses.dataclass
class _Cfg:
    lr: float = 0.1
    layers: tuple[int, ...] = (1, 2)


def test_config_from_dataclass_and_namespace(root: Path) -> None:
    with runlab.start_run(config=_Cfg(), root=root, capture_stdout=False) as a:
        pass
    with runlab.start_run(config=argparse.Namespace(x=1), root=root, capture_stdout=False) as b:
        pass
    assert runlab.RunRecord(a.dir).config == {"lr": 0.1, "layers": [1, 2]}
    assert runlab.RunRecord(b.dir).config == {"x": 1}
    with pytest.raises(ConfigError, match="config must be a mapping"):
        runlab.start_run(config=[1, 2], root=root)


def test_paths_stay_inside_the_run_directory(root: Path) -> None:
    with runlab.start_run(root=root, capture_stdout=False) as run:
        assert run.checkpoint_path(3).name == "epoch_0003.pt"
        assert run.checkpoint_path("best") == run.dir / "checkpoints" / "best.pt"
        assert run.figure_path("losses") == run.dir / "figures" / "losses.png"
        assert run.artifact_path("preds/val.csv").parent.is_dir()
        for bad in ("../x", "/etc/passwd", "a/../../x"):
            with pytest.raises(ConfigError, match="inside the run directory"):
                run.artifact_path(bad)


def test_stdout_is_copied_to_stdout_log(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with runlab.start_run(root=root) as run:
        print("hello from the loop")
    print("after the run")
    assert "hello from the loop" in capsys.readouterr().out  # the terminal still sees it
    log = (run.dir / "stdout.log").read_text()
    assert "hello from the loop" in log and "after the run" not in log


def test_heartbeat_progress_eta_and_background_summary_flush(root: Path) -> None:
    with runlab.start_run(root=root, heartbeat_interval=0.2, capture_stdout=False) as run:
        run.progress(total_epochs=4)
        run.log_epoch(0, {"train": {"loss": 1.0}})
        run.summary["note"] = "flushed by the heartbeat thread"
        time.sleep(0.8)
        beat = json.loads((run.dir / "heartbeat.json").read_text())
        metrics = json.loads((run.dir / "metrics.json").read_text())
    assert beat["status"] == "running" and beat["pid"] > 0 and beat["interval"] == 0.2
    assert beat["progress"] == 0.25 and beat["epoch"] == 0 and beat["total_epochs"] == 4
    assert beat["eta_seconds"] == pytest.approx(3 * beat["elapsed_seconds"], rel=1e-3)
    assert time.time() - beat["time"] < 1.0
    assert metrics["note"] == "flushed by the heartbeat thread"


def test_torch_version_only_when_imported(root: Path, tmp_path: Path) -> None:
    code = (
        "import sys, runlab\n"
        "if sys.argv[2] == 'torch': import torch\n"
        "with runlab.start_run(root=sys.argv[1]) as run: print(run.dir)\n"
    )
    script = tmp_path / "v.py"
    script.write_text(code)
    versions = {}
    for mode in ("plain", "torch"):
        out = subprocess.run(
            [__import__("sys").executable, str(script), str(root), mode],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        versions[mode] = json.loads((Path(out) / "run.json").read_text())["versions"]
    assert "torch" not in versions["plain"]
    assert versions["torch"]["torch"].startswith("2.")
    assert versions["plain"]["runlab"] == runlab.__version__


def test_git_commit_and_dirty_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "train.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    monkeypatch.chdir(repo)
    with runlab.start_run(root=tmp_path / "runs", capture_stdout=False) as clean:
        pass
    (repo / "train.py").write_text("x = 2\n")
    with runlab.start_run(root=tmp_path / "runs", capture_stdout=False) as dirty:
        pass
    top = str(repo.resolve())
    assert clean.info["git"] == {"commit": head.strip(), "dirty": False, "root": top}
    diff = (dirty.dir / "code" / "git.diff").read_bytes()  # what the commit lacks
    assert b"-x = 1\n+x = 2" in diff
    import hashlib

    assert dirty.info["git"] == {
        "commit": head.strip(), "dirty": True, "root": top, "diff": "code/git.diff",
        "diff_bytes": len(diff), "diff_sha256": hashlib.sha256(diff).hexdigest(),
    }  # fmt: skip


def test_no_git_repository_gives_null(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with runlab.start_run(root=tmp_path / "runs", capture_stdout=False) as run:
        pass
    assert run.info["git"] is None


def test_exception_in_block_fails_the_run_and_reraises(root: Path) -> None:
    with (
        pytest.raises(ZeroDivisionError),
        runlab.start_run(root=root, capture_stdout=False) as run,
    ):
        run.log_epoch(0, {"train": {"loss": 1.0}})
        1 / 0  # noqa: B018
    record = runlab.RunRecord(run.dir)
    assert record.state is runlab.RunState.FAILED
    error = record.metrics["error"]
    assert error["type"] == "ZeroDivisionError" and "division by zero" in error["message"]
    assert "1 / 0" in error["traceback"]
    assert [e["event"] for e in record.events()][-2:] == ["on_exception", "on_train_end"]


def test_keyboard_interrupt_stops_the_run(root: Path) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        runlab.start_run(root=root, capture_stdout=False) as run,
    ):
        raise KeyboardInterrupt
    assert runlab.RunRecord(run.dir).state is runlab.RunState.STOPPED


def test_environment_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLAB_ROOT", str(tmp_path / "elsewhere"))
    with runlab.start_run(capture_stdout=False) as run:
        pass
    assert run.dir.parent == tmp_path / "elsewhere"


def test_a_reopened_run_adds_its_sessions_durations(root: Path) -> None:
    """duration_seconds is the time of every session (a resume or a Lightning test phase),
    each timed here by a clock around it."""
    t0 = time.perf_counter()
    with runlab.start_run({}, root=root, capture_stdout=False) as run:
        time.sleep(0.3)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    with runlab.Run.reopen(run.dir, capture_stdout=False) as again:
        time.sleep(0.2)
    second = time.perf_counter() - t0
    info = json.loads((again.dir / "run.json").read_text())
    assert 0.5 <= info["duration_seconds"] <= first + second
    ends = runlab.RunRecord(run.dir).events("on_train_end")
    assert 0.2 <= ends[-1]["session_seconds"] <= second
    assert (
        json.loads((run.dir / "metrics.json").read_text())["duration_seconds"]
        == info["duration_seconds"]
    )
