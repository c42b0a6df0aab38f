"""Mirrors to TensorBoard, W&B (offline) and MLflow (SQLite store), read back with each tool's
own reader; faults with an unreachable server, a sink that raises, one that hangs, a missing
package; ``runlab sync`` from files, twice."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runlab
from runlab._io import read_jsonl
from runlab.sinks.mirror import read_mirrors
from runlab.tracking.record import RunRecord
from tests.conftest import python_script, run_python
from tests.sink_helpers import tensorboard_scalars, wandb_items, wandb_records

pytest.importorskip("mlflow")
pytest.importorskip("wandb")
pytest.importorskip("tensorboard")

CONFIG = {"lr": 0.01, "api_key": "s3cret", "model": {"hidden": [8, 4]}}


def train(
    root: Path, sinks: list[str], epochs: int = 3, config: Any = None, **options: Any
) -> runlab.Run:
    with runlab.start_run(
        config or CONFIG, root=root, name="mirrored", tags={"team": "quant"}, sinks=sinks, **options
    ) as run:
        for epoch in range(epochs):
            for i in range(4):
                run.log({"loss": 1.0 / (epoch * 4 + i + 1), "note": "text is not a scalar"})
            run.log_epoch(
                epoch,
                {"train": {"loss": 0.5 / (epoch + 1)}, "val": {"loss": 0.6 / (epoch + 1)}},
                lr=0.01,
            )
        run.summary["best_val_loss"] = 0.2
    return run


def warnings(run_dir: Path) -> list[dict[str, Any]]:
    return RunRecord(run_dir).events("on_warning")


def mlflow_run(uri: str, run_id: str) -> Any:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("runlab")
    runs = client.search_runs([experiment.experiment_id], f"tags.`runlab.run_id` = '{run_id}'")
    return client, runs


def test_live_mirror_to_all_three(root: Path, stores: dict[str, Any]) -> None:
    run = train(root, ["tensorboard", "wandb", "mlflow"])
    record = RunRecord(run.dir)
    assert record.state.value == "finished"
    assert warnings(run.dir) == []
    expected_val = [(r["epoch"], r["loss"]) for r in record.scalars() if r["split"] == "val"]

    # TensorBoard: event files in the run directory, read with tensorboard's EventAccumulator
    scalars = tensorboard_scalars(run.dir / "tensorboard")
    assert [(s, pytest.approx(v)) for s, v in scalars["val/loss"]] == expected_val
    assert len(scalars["step/loss"]) == 12 and scalars["step/loss"][-1][0] == 11
    assert [s for s, _ in scalars["epoch/lr"]] == [0, 1, 2]
    assert scalars["summary/best_val_loss"][0][1] == pytest.approx(0.2)
    system = read_jsonl(run.dir / "system.jsonl")  # system metrics are mirrored as they come
    assert [v for _, v in scalars["system/rss_mib"]] == [
        pytest.approx(r["rss_mib"]) for r in system
    ]

    # MLflow: one run, read back with MlflowClient
    client, runs = mlflow_run(stores["uri"], run.id)
    assert len(runs) == 1
    ml = runs[0]
    assert ml.info.status == "FINISHED" and ml.info.run_name == "mirrored"
    assert ml.data.params["api_key"] == "***" and ml.data.params["model.hidden"] == "[8, 4]"
    assert ml.data.tags["team"] == "quant" and ml.data.tags["runlab.status"] == "finished"
    history = client.get_metric_history(ml.info.run_id, "val/loss")
    assert [(m.step, pytest.approx(m.value)) for m in history] == expected_val
    assert len(client.get_metric_history(ml.info.run_id, "step/loss")) == 12
    assert len(client.get_metric_history(ml.info.run_id, "system/rss_mib")) == len(system)
    assert ml.data.metrics["best_val_loss"] == pytest.approx(0.2)
    artifacts = {a.path for a in client.list_artifacts(ml.info.run_id)}
    assert {"config.yaml", "metrics.json", "scalars.csv"} <= artifacts

    # W&B: the offline run directory `wandb sync` would upload
    (offline,) = stores["wandb"].glob(f"offline-run-*-{run.id}")
    kinds: dict[str, list[Any]] = {}
    for kind, rec in wandb_records(offline):
        kinds.setdefault(kind, []).append(rec)
    (wrun,) = kinds["run"]
    config = wandb_items(wrun.run.config.update)
    assert config["api_key"] == "***" and config["model"] == {"hidden": [8, 4]}
    assert wrun.run.run_id == run.id and "team=quant" in list(wrun.run.tags)
    rows = [wandb_items(h.history.item) for h in kinds["history"]]
    val = [(r["epoch"], pytest.approx(r["val/loss"])) for r in rows if "val/loss" in r]
    assert val == expected_val
    assert sum("step/loss" in r for r in rows) == 12
    summary: dict[str, Any] = {}
    for s in kinds["summary"]:
        summary.update(wandb_items(s.summary.update))
    assert summary["runlab/status"] == "finished" and summary["best_val_loss"] == 0.2
    assert kinds["exit"][0].exit.exit_code == 0
    (artifact,) = kinds["artifact"]
    assert {m.path for m in artifact.artifact.manifest.contents} >= {"metrics.json", "config.yaml"}

    entries = {e["sink"]: e for e in read_mirrors(run.dir)}
    assert sorted(entries) == ["mlflow", "tensorboard", "wandb"]
    assert all(e["complete"] and e["how"] == "live" for e in entries.values())
    assert entries["mlflow"]["id"] == ml.info.run_id


def test_run_cli_sink_flag_mirrors_the_trainer(
    cli: Callable[..., Any], root: Path, stores: dict[str, Any]
) -> None:
    code, out, err = cli(
        "run",
        _example(),
        "-o",
        root,
        "--sink",
        "tensorboard",
        "--sink",
        "mlflow",
        "trainer.epochs=2",
    )
    assert code == 0, err
    run_dir = Path(out.strip().splitlines()[-1])
    rows = RunRecord(run_dir).scalars()
    scalars = tensorboard_scalars(run_dir / "tensorboard")
    assert [s for s, _ in scalars["val/loss"]] == [r["epoch"] for r in rows if r["split"] == "val"]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx(
        [r["loss"] for r in rows if r["split"] == "train"], rel=1e-6
    )
    client, (ml,) = mlflow_run(stores["uri"], run_dir.name)
    assert ml.data.params["trainer.epochs"] == "2"
    artifacts = {a.path for a in client.list_artifacts(ml.info.run_id, "checkpoints")}
    assert artifacts == {"checkpoints/best.pt"}
    assert RunRecord(run_dir).config["sinks"] == ["tensorboard", "mlflow"]


def _example() -> str:
    return str(Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_mlflow_server_is_one_warning(root: Path, stores: dict[str, Any]) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    run = train(root, ["mlflow", "tensorboard"], sink_options={"mlflow": {"tracking_uri": uri}})
    assert RunRecord(run.dir).state.value == "finished"
    (warning,) = warnings(run.dir)
    assert warning["sink"] == "mlflow" and warning["code"] == "sink_failed"
    assert (
        "could not start" in warning["message"]
        and f"cannot reach MLflow tracking server {uri}" in warning["message"]
    )
    assert f"runlab sync {run.id} --sink mlflow" in warning["message"]
    assert [e["sink"] for e in read_mirrors(run.dir)] == ["tensorboard"]  # the other sink works


def test_sink_raising_mid_run_is_switched_off(root: Path, stores: dict[str, Any]) -> None:
    run = train(root, ["tests.sink_helpers:FlakySink", "tensorboard"], epochs=40)
    assert RunRecord(run.dir).state.value == "finished"
    (warning,) = warnings(run.dir)
    assert warning["sink"] == "flaky"
    assert "failed mid-run: ConnectionResetError: server went away" in warning["message"]
    assert len(tensorboard_scalars(run.dir / "tensorboard")["val/loss"]) == 40


def test_the_mirror_process_turns_mlflow_telemetry_off_unless_told(
    root: Path, stores: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    run = train(root, ["tests.sink_helpers:EnvSink"], epochs=1)
    assert (run.dir / "mirror-env.txt").read_text() == "true"
    assert "MLFLOW_DISABLE_TELEMETRY" not in os.environ  # the run's own process is untouched
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")  # the user's choice wins
    run = train(root, ["tests.sink_helpers:EnvSink"], epochs=1)
    assert (run.dir / "mirror-env.txt").read_text() == "false"


def test_training_never_waits_on_a_hung_sink(root: Path, stores: dict[str, Any]) -> None:
    started = time.monotonic()
    run = train(
        root,
        ["tests.sink_helpers:StuckSink"],
        epochs=5,
        sink_options={"tests.sink_helpers:StuckSink": {"timeout": 0.5}},
    )
    # the sink blocks for 60 s in its first write: the run logged everything and ended anyway
    assert time.monotonic() - started < 30
    assert RunRecord(run.dir).state.value == "finished"
    (warning,) = warnings(run.dir)
    assert "sink stuck did not finish within 0.5 s" in warning["message"]
    assert read_mirrors(run.dir) == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not installed", "the wandb sink needs the 'wandb' package: pip install 'runlab[wandb]'"),
        ("no credentials", "could not start: UsageError: No API key configured"),
    ],
)
def test_sink_that_cannot_start_names_the_cause(tmp_path: Path, case: str, expected: str) -> None:
    env = {"WANDB_MODE": "online", "HOME": str(tmp_path), "WANDB_DIR": str(tmp_path)}
    env["WANDB_API_KEY"] = ""
    if case == "not installed":  # what `import wandb` does where it is not installed
        shadow = tmp_path / "shadow"
        shadow.mkdir()
        (shadow / "wandb.py").write_text("raise ModuleNotFoundError(\"No module named 'wandb'\")\n")
        env["PYTHONPATH"] = str(shadow)
    script = python_script(
        tmp_path,
        f"""
        import runlab
        with runlab.start_run({{}}, root={str(tmp_path / "runs")!r}, sinks=["wandb"]) as run:
            run.log_epoch(0, {{"train": {{"loss": 1.0}}}})
        print(run.dir)
        """,
    )
    proc = run_python(script, env=env)
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    (warning,) = warnings(run_dir)
    assert warning["sink"] == "wandb" and expected in warning["message"]
    assert "runlab: warning: sink wandb off for this run" in proc.stderr
    assert RunRecord(run_dir).state.value == "finished"


def test_bad_sink_config_is_exit_2_without_a_run(cli: Callable[..., Any], root: Path) -> None:
    for args, message in [
        (["--sink", "tensorbord"], "unknown sink 'tensorbord' (did you mean 'tensorboard'?)"),
        (["sinks=[wandb]", "wandb.mode=offlin"], "wandb.mode must be one of"),
        (["sinks=[mlflow]", "+mlflow.uri=x"], "unknown key mlflow.uri"),
        (["sinks=[tests.sink_helpers:Nope]"], "has no attribute 'Nope'"),
    ]:
        code, _, err = cli("run", _example(), "-o", root, *args)
        assert code == 2, (args, err)
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not root.exists() or list(root.iterdir()) == []


def test_sync_mirrors_from_files_once(
    cli: Callable[..., Any], root: Path, stores: dict[str, Any]
) -> None:
    run = train(root, [])
    sinks = ["--sink", "tensorboard", "--sink", "wandb", "--sink", "mlflow"]

    def counts() -> tuple[int, int, int, int]:
        client, runs = mlflow_run(stores["uri"], run.id)
        history = client.get_metric_history(runs[0].info.run_id, "val/loss") if runs else []
        events = len(list((run.dir / "tensorboard").glob("events.out.tfevents.*")))
        offline = len(list(stores["wandb"].glob(f"offline-run-*-{run.id}")))
        return len(runs), len(history), events, offline

    code, out, err = cli("sync", root, *sinks, "-f", "json")
    assert code == 0, err
    assert [r["outcome"] for r in json.loads(out)] == ["synced"] * 3
    assert counts() == (1, 3, 1, 1)
    assert tensorboard_scalars(run.dir / "tensorboard")["val/loss"][-1][0] == 2

    code, out, _ = cli("sync", run.id, "--root", root, *sinks, "-f", "json")
    assert [r["outcome"] for r in json.loads(out)] == ["already synced"] * 3
    assert counts() == (1, 3, 1, 1)

    code, out, _ = cli("sync", root, *sinks, "--force", "-f", "json")
    assert code == 0 and [r["outcome"] for r in json.loads(out)] == ["replaced"] * 3
    assert counts() == (1, 3, 1, 1)

    # deleted at the destination: the next sync mirrors it again
    client, (ml,) = mlflow_run(stores["uri"], run.id)
    client.delete_run(ml.info.run_id)
    code, out, _ = cli("sync", root, "--sink", "mlflow", "-f", "json")
    assert [r["outcome"] for r in json.loads(out)] == ["replaced"]
    assert counts()[:2] == (1, 3)


def test_sync_redoes_an_incomplete_mirror_and_skips_live_runs(
    cli: Callable[..., Any], root: Path, stores: dict[str, Any]
) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    failed = train(root, ["mlflow"], config={**CONFIG, "mlflow": {"tracking_uri": uri}})
    assert warnings(failed.dir)[0]["sink"] == "mlflow"  # the config's own block was used
    code, out, _ = cli("sync", failed.id, "--root", root, "--sink", "mlflow", "-f", "json")
    assert code == 1 and json.loads(out)[0]["outcome"] == "failed"  # the run's own (dead) URI
    code, out, err = cli(
        "sync",
        failed.id,
        "--root",
        root,
        "--sink",
        "mlflow",
        "--set",
        f"mlflow.tracking_uri={stores['uri']}",
        "-f",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)[0]["outcome"] == "synced"
    assert len(mlflow_run(stores["uri"], failed.id)[1]) == 1

    live = runlab.start_run({}, root=root, name="live")
    try:
        code, out, _ = cli("sync", live.id, "--root", root, "--sink", "tensorboard", "-f", "json")
        assert json.loads(out) == [
            {
                "run_id": live.id,
                "sink": "tensorboard",
                "outcome": "skipped",
                "detail": "run is running",
            }
        ]
    finally:
        live.finish()
    code, _, err = cli("sync", root, "--sink", "mlflow", "--set", "mlflow")
    assert code == 2 and "expected SINK.KEY=VALUE" in err


def test_importing_the_sinks_package_imports_no_tracker(tmp_path: Path) -> None:
    script = python_script(
        tmp_path,
        """
        import sys, runlab, runlab.sinks, runlab.sinks.mirror, runlab.sinks.replay
        print(sorted(m for m in ("wandb", "mlflow", "tensorboard") if m in sys.modules))
        """,
    )
    proc = run_python(script)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_names_mlflow_refuses_are_mapped_not_dropped(
    root: Path, stores: dict[str, Any], cli: Callable[..., Any]
) -> None:
    """acc@5 and ndcg@10 switched the whole MLflow mirror off (0 metrics, run FAILED)."""
    with runlab.start_run(CONFIG, root=root, name="ranked", sinks=["mlflow"]) as run:
        for epoch in range(2):
            run.log({"acc@5": 0.1 * epoch})
            run.log_epoch(epoch, {"val": {"acc@5": 0.5 + epoch, "ndcg@10": 0.3, "loss": 1.0}})
        run.summary["test"] = {"ndcg@10": 0.25}
    assert warnings(run.dir) == []
    client, (ml,) = mlflow_run(stores["uri"], run.id)
    assert ml.info.status == "FINISHED"
    history = client.get_metric_history(ml.info.run_id, "val/acc_at_5")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 1.5)]
    assert ml.data.metrics["test.ndcg_at_10"] == 0.25 and "val/loss" in ml.data.metrics
    (entry,) = read_mirrors(run.dir)
    assert (
        entry["renamed"].items()
        >= {
            "step/acc@5": "step/acc_at_5",
            "val/acc@5": "val/acc_at_5",
            "val/ndcg@10": "val/ndcg_at_10",
            "test.ndcg@10": "test.ndcg_at_10",
        }.items()
    )
    # runlab sync, from the files, makes the same names
    code, _, err = cli("sync", run.id, "--root", root, "--sink", "mlflow", "--force")
    assert code == 0, err
    client, (again,) = mlflow_run(stores["uri"], run.id)
    assert len(client.get_metric_history(again.info.run_id, "val/acc_at_5")) == 2


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=8))
def test_every_mapped_name_is_one_mlflow_accepts_and_none_collide(names: list[str]) -> None:
    """MLflow's own validator is the reference; two names never share one MLflow name."""
    from mlflow.utils.validation import _validate_metric_name

    from runlab.sinks.mlflow import MlflowNames

    mapping = MlflowNames()
    mapped = {name: mapping(name) for name in names}
    for stored in mapped.values():
        _validate_metric_name(stored)
        assert len(stored) <= 250
    assert len(set(mapped.values())) == len(mapped)
    assert mapping.renamed == {k: v for k, v in mapped.items() if k != v}


def _python_run_then(tmp_path: Path, root: Path, ending: str) -> Path:
    """A run mirrored with options given from Python only (not in its config), ended by
    ``ending``: ``finish`` or ``kill`` (SIGKILL mid-run, its mirrors left half done)."""
    script = python_script(
        tmp_path,
        f"""
        import os, signal, time
        from pathlib import Path
        import runlab
        options = {{"mlflow": {{"experiment": "from-python"}},
                   "tensorboard": {{"log_dir": {str(tmp_path / "tb")!r}}}}}
        with runlab.start_run({{"lr": 0.1}}, root={str(root)!r}, name="py",
                              sinks=["mlflow", "tensorboard"], sink_options=options) as run:
            for epoch in range(3):
                run.log_epoch(epoch, {{"val": {{"loss": 1.0 / (epoch + 1)}}}})
            print(run.dir, flush=True)
            if {ending!r} == "kill":  # once the mirrors have written something
                events = Path({str(tmp_path / "tb")!r}, run.dir.name)
                deadline = time.monotonic() + 60
                while not list(events.glob("events.out.tfevents.*")):
                    assert time.monotonic() < deadline, "the TensorBoard mirror wrote nothing"
                    time.sleep(0.1)
                print(run._listeners[0]._proc.pid, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
        """,
    )
    done = run_python(script, timeout=120)
    run_dir, *child = done.stdout.split()
    deadline = time.monotonic() + 60  # the orphaned mirror process ends at end of its input
    while child and Path(f"/proc/{child[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return Path(run_dir)


@pytest.mark.parametrize("ending", ["finish", "kill"])
def test_sync_reuses_the_options_a_run_mirrored_with(
    cli: Callable[..., Any], root: Path, tmp_path: Path, stores: dict[str, Any], ending: str
) -> None:
    """sync wrote a second MLflow run into another experiment and a second TensorBoard copy;
    after a crash, the half mirror is replaced, never duplicated."""
    from mlflow import MlflowClient

    run_dir = _python_run_then(tmp_path, root, ending)
    state = RunRecord(run_dir).state.value
    assert state == ("finished" if ending == "finish" else "crashed")
    code, out, err = cli("sync", root, "--sink", "mlflow", "--sink", "tensorboard", "-f", "json")
    assert code == 0, err
    expected = "already synced" if ending == "finish" else "synced"
    assert [r["outcome"] for r in json.loads(out)] == [expected, expected]
    client = MlflowClient(stores["uri"])
    assert client.get_experiment_by_name("runlab") is None  # nothing went elsewhere
    experiment = client.get_experiment_by_name("from-python")
    (ml,) = client.search_runs([experiment.experiment_id])
    assert [m.value for m in client.get_metric_history(ml.info.run_id, "val/loss")] == [
        1.0,
        0.5,
        pytest.approx(1 / 3),
    ]
    assert not (run_dir / "tensorboard").exists()
    assert len(tensorboard_scalars(tmp_path / "tb" / run_dir.name)["val/loss"]) == 3
    assert len(list((tmp_path / "tb" / run_dir.name).glob("events.out.tfevents.*"))) == 1
    assert RunRecord(run_dir).info["sinks"]["mlflow"]["experiment"] == "from-python"


def test_mlflow_source_tags_match_mlflows_own_and_tensorboard_has_the_status(
    tmp_path: Path,
) -> None:
    """In one git repository, a run started with MLflow's own fluent API and a runlab run
    mirrored to MLflow carry the same mlflow.source.* and mlflow.user tags; TensorBoard's
    HParams session ends with the run's status, read back as the HParams plugin reads it."""
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@x", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    script = python_script(
        repo,
        f"""
        import json, mlflow, runlab
        mlflow.set_tracking_uri("sqlite:///{repo}/mlflow.db")
        with mlflow.start_run() as own:
            pass
        for status, body in (("finished", None), ("failed", ValueError("boom"))):
            try:
                with runlab.start_run({{}}, root="{repo}/runs", sinks=["mlflow", "tensorboard"],
                                      sink_options={{"mlflow": {{}}, "tensorboard": {{}}}}) as run:
                    run.log_epoch(0, {{"val": {{"loss": 1.0}}}})
                    if body:
                        raise body
            except ValueError:
                pass
            print(json.dumps({{"status": status, "dir": str(run.dir), "mlflow": own.info.run_id}}))
        """,
        name="train.py",
    )
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import api_pb2, metadata

    client = MlflowClient(f"sqlite:///{repo}/mlflow.db")
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    for line in done.stdout.splitlines():
        case = json.loads(line)
        own = client.get_run(case["mlflow"]).data.tags
        run_id = Path(case["dir"]).name
        (mirrored,) = client.search_runs(
            [client.get_experiment_by_name("runlab").experiment_id],
            f"tags.`runlab.run_id` = '{run_id}'",
        )
        keys = ("mlflow.source.git.commit", "mlflow.source.type", "mlflow.user")
        assert {k: mirrored.data.tags.get(k) for k in keys} == {k: own.get(k) for k in keys}
        assert own["mlflow.source.git.commit"] == commit.strip()
        assert Path(mirrored.data.tags["mlflow.source.name"]).name == "train.py"
        acc = EventAccumulator(str(Path(case["dir"]) / "tensorboard"))
        acc.Reload()
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_END_INFO_TAG]
        end = metadata.parse_session_end_info_plugin_data(content)
        expected = "STATUS_SUCCESS" if case["status"] == "finished" else "STATUS_FAILURE"
        assert api_pb2.Status.Name(end.status) == expected
