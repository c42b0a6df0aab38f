"""runlab tune: Optuna studies whose trials are runs in child processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import runlab
from runlab.config import load_config

pytest.importorskip("optuna")
REPO = Path(__file__).resolve().parents[1]
TUNE = str(REPO / "examples" / "tune.yaml")
NAN_MODEL = ["~model", "+model._target_=tests.helpers.NaNAfter"]  # NaN from forward N on


def tune(cli, root: Path, *args: str, code: int = 0) -> dict:
    got, out, err = cli("tune", *args, "-o", root, "-f", "json")
    assert got == code, err
    return json.loads(out)


def test_study_in_parallel_then_resumed(cli, root: Path) -> None:
    summary = tune(cli, root, TUNE, "--trials", "4", "--jobs", "2", "--seed", "0")
    assert [t["state"] for t in summary["trials"]] == ["COMPLETE"] * 4  # no "database is locked"
    folder = Path(summary["folder"])
    lines = (folder / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["run_id"]
    best = summary["best"][0]
    assert yaml.safe_load((folder / "best_params.yaml").read_text()) == best["params"]
    best_cfg = load_config(folder / "best_config.yaml")  # runnable as is
    assert best_cfg["optim"]["lr"] == pytest.approx(best["params"]["optim.lr"])
    record = runlab.RunRecord(root / best["run_id"])
    assert record.info["parent"] == "study:tune" and record.info["trial"] == best["number"]
    # the dashboard's study page: objective and direction from study.json, the same best
    from runlab.web import data

    page = data.study_detail(root, "study", "tune")
    assert page["objectives"] == summary["objectives"] and page["direction"] == "minimize"
    assert page["best"]["number"] == best["number"] and len(page["trials"]) == 4
    assert page["params"] == sorted(best["params"])
    assert record.info["params"] == best["params"]
    again = tune(cli, root, TUNE, "--trials", "2", "--seed", "1")  # same name: same study
    assert len(again["trials"]) == 6 and (folder / "trials.jsonl").read_text().count("\n") == 6


@pytest.mark.slow  # 63 s, the slowest of the default suite; `make test-slow` runs it
def test_pruning_and_failures_never_stop_the_study(cli, root: Path) -> None:
    # one job at a time: with parallel trials the median at report time depends on timing
    summary = tune(
        cli,
        root,
        TUNE,
        "optim.lr=tag(log, interval(1e-6, 3e-2))",
        "trainer.epochs=4",
        "--trials",
        "6",
        "--sampler",
        "random",
        "--seed",
        "0",
        "--study-name",
        "pruning",
    )
    pruned = [t for t in summary["trials"] if t["state"] == "PRUNED"]
    assert pruned, summary["trials"]
    record = runlab.RunRecord(root / pruned[0]["run_id"])
    assert record.state is runlab.RunState.PRUNED
    assert "pruned by the study's pruner" in record.events("on_pruned")[0]["message"]
    summary = tune(
        cli,
        root,
        TUNE,
        *NAN_MODEL,
        "+model.after=choice(25,100000)",
        "~search",  # only the grid above: the example's search block has an interval
        "--sampler",
        "grid",
        "--trials",
        "2",
        "--study-name",
        "failing",
        code=1,  # a failed trial is in the exit code; the study still ran every trial
    )
    states = {t["params"]["+model.after"]: t for t in summary["trials"]}
    assert states[100000]["state"] == "COMPLETE" and states[25]["state"] == "FAIL"
    assert states[25]["fail_reason"].startswith("NonFiniteLossError: non-finite training loss")


def test_several_objectives_give_the_pareto_front(cli, root: Path) -> None:
    summary = tune(
        cli,
        root,
        TUNE,
        "--trials",
        "3",
        "--jobs",
        "2",
        "--objective",
        "val.loss",
        "--objective",
        "val.r2",
        "--direction",
        "minimize",
        "--direction",
        "maximize",
        "--sampler",
        "nsgaii",
        "--seed",
        "0",
        "--study-name",
        "pareto",
    )
    assert all(len(t["values"]) == 2 for t in summary["trials"])
    assert 1 <= len(summary["best"]) <= 3


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["optim.lr=interval(0.1, 0.01)"], "needs low < high"),
        (["optim.lr=tag(log, interval(0, 0.01))"], "a log interval needs low > 0"),
        (["optim.lrr=choice(0.1,0.2)"], "unknown override key 'optim.lrr'"),
        (["--sampler", "bogus"], "unknown sampler 'bogus'"),
        (["--objective", "val.loss", "--direction", "up"], "minimize or maximize"),
        (["optim.weight_decay=range(0,1,0)"], "needs a step other than 0"),
        (["optim.weight_decay=range(3,3)"], "is empty (the stop is excluded)"),
    ],
)
def test_invalid_space_fails_before_any_trial(
    cli, root: Path, args: list[str], fragment: str
) -> None:
    code, _, err = cli("tune", TUNE, *args, "--trials", "1", "-o", root)
    assert code == 2 and fragment in err and err.count("\n") == 1
    assert not any(p.is_dir() and (p / "run.json").exists() for p in root.glob("*"))


def test_in_process_trials(cli, root: Path) -> None:
    summary = tune(
        cli,
        root,
        TUNE,
        "--trials",
        "3",
        "--in-process",
        "--pruner",
        "none",
        "--seed",
        "0",
        "--study-name",
        "inproc",
    )
    assert [t["state"] for t in summary["trials"]] == ["COMPLETE"] * 3
    record = runlab.RunRecord(root / summary["trials"][0]["run_id"])
    assert record.info["parent"] == "study:inproc" and record.state is runlab.RunState.FINISHED
    assert record.info["params"] == summary["trials"][0]["params"]
    # watch --study shows the study's runs and, the study being over, returns at once
    code, out, err = cli("watch", "--study", "inproc", "--root", root, "--interval", "0.1")
    assert code == 0, err
    assert sorted(line.split()[1] for line in out.splitlines() if line.startswith("╭─")) == sorted(
        t["run_id"] for t in summary["trials"]
    )
    code, _, err = cli("tune", TUNE, "--in-process", "--jobs", "2", "-o", root)
    assert code == 2 and "--in-process runs one trial at a time" in err


def test_timeout_parsing() -> None:
    from runlab.errors import ConfigError
    from runlab.sweep.study import parse_timeout

    assert parse_timeout("30m") == 1800 and parse_timeout("2h") == 7200
    assert parse_timeout("45") == 45 and parse_timeout(None) is None
    with pytest.raises(ConfigError, match="use seconds or 30s, 30m, 2h"):
        parse_timeout("soon")


def _resumed_twice(cli, root: Path) -> list[dict]:
    args = [TUNE, "trainer.epochs=1", "--sampler", "random", "--seed", "42", "--in-process"]
    tune(cli, root, *args, "--trials", "3", "--study-name", "again")
    return tune(cli, root, *args, "--trials", "3", "--study-name", "again")["trials"]


def test_a_resumed_study_continues_the_sampler_sequence(cli, root: Path, tmp_path: Path) -> None:
    """Run twice with one name and seed: six different trials (trial 3 was trial 0 again),
    and the same six again from scratch elsewhere."""
    trials = _resumed_twice(cli, root)
    lrs = [t["params"]["optim.lr"] for t in trials]
    assert len(lrs) == 6 and len(set(lrs)) == 6, lrs
    again = _resumed_twice(cli, tmp_path / "elsewhere")
    assert [t["params"] for t in again] == [t["params"] for t in trials]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        # the driver is not installed here (or, if it is, nothing listens on port 1)
        ("postgresql://u:hunter2@localhost:1/db", "--storage 'postgresql://u:***@localhost:1/db'"),
        ("mysql+pymysql://u@localhost:1/db", "--storage 'mysql+pymysql://u@localhost:1/db'"),
        ("bogus://x", "Can't load plugin"),
        ("studies.db", "is not a storage URL"),
    ],
)
def test_bad_storage_is_one_line_and_leaves_nothing(
    cli, root: Path, url: str, fragment: str
) -> None:
    code, _, err = cli("tune", TUNE, "--trials", "1", "--storage", url, "-o", root)
    assert code == 2 and err.count("\n") == 1 and fragment in err, err
    assert "hunter2" not in err and "Traceback" not in err
    assert not root.exists() or not any(root.rglob("*"))


def test_space_grammar_follows_hydra() -> None:
    """As in Hydra's Optuna sweeper: interval() is float even with integer ends (int(...) makes
    it integer); range() excludes its stop, float and negative steps included."""
    import optuna

    from runlab.sweep.study import parse_space

    space, _ = parse_space(
        [
            "a=interval(1,5)",
            "b=int(interval(1,5))",
            "c=range(0,1,0.25)",
            "d=range(5,0,-1)",
            "e=tag(log, int(interval(1,100)))",
        ]
    )
    d = optuna.distributions
    assert space["a"] == d.FloatDistribution(1.0, 5.0)
    assert space["b"] == d.IntDistribution(1, 5)
    assert space["c"] == d.FloatDistribution(0.0, 0.75, step=0.25)
    assert space["d"] == d.IntDistribution(1, 5)
    assert space["e"] == d.IntDistribution(1, 100, log=True)


def test_float_range_on_a_grid(cli, root: Path) -> None:
    summary = tune(
        cli,
        root,
        TUNE,
        "~search",
        "trainer.epochs=1",
        "optim.weight_decay=range(0,1,0.25)",
        "--sampler",
        "grid",
        "--trials",
        "4",
        "--in-process",
    )
    values = sorted(t["params"]["optim.weight_decay"] for t in summary["trials"])
    assert values == [0.0, 0.25, 0.5, 0.75]


def test_creating_a_study_is_safe_to_race(tmp_path: Path) -> None:
    """Two `runlab tune` started together on a new storage raced on creating its schema and
    study (SQLAlchemy IntegrityError/OperationalError in 3 of 4 pairs); four threads at one
    barrier, on ten fresh storages, failed in every round before."""
    import threading

    import optuna

    from runlab.sweep.study import raced, storage_for

    def create(root: Path, barrier: threading.Barrier, errors: list[str]) -> None:
        barrier.wait()
        try:
            store = storage_for(None, root)
            raced(lambda: optuna.create_study(study_name="s", storage=store, load_if_exists=True))
        except Exception as err:
            errors.append(repr(err))

    for attempt in range(10):
        barrier, errors = threading.Barrier(4), []
        args = (tmp_path / str(attempt), barrier, errors)
        threads = [threading.Thread(target=create, args=args) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


def test_in_process_tunes_an_episodic_config(cli, root: Path) -> None:
    """--in-process trains through the one place that trains a config, so every loop works
    there (it refused all but supervised; before that, every episodic trial failed)."""
    alloc = str(Path(__file__).resolve().parents[1] / "examples" / "allocation.yaml")
    summary = tune(
        cli,
        root,
        alloc,
        "trainer.epochs=2",
        "episodic.episodes_per_epoch=128",
        "optim.lr=tag(log, interval(1e-4, 1e-2))",
        "--trials",
        "2",
        "--in-process",
        "--objective",
        "val.reward",
        "--direction",
        "maximize",
        "--seed",
        "0",
    )
    assert [t["state"] for t in summary["trials"]] == ["COMPLETE"] * 2
    run = runlab.RunRecord(root / summary["trials"][0]["run_id"])
    assert run.metrics["monitor"] == "val.reward"
    assert summary["trials"][0]["values"] == [run.metrics["val"]["reward"]]


def test_failed_trials_say_why_in_the_table_ls_and_the_study_page(
    cli, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runlab.cli._format import Format
    from runlab.cli.sweep import _print_study
    from runlab.web import data

    summary = tune(
        cli,
        root,
        TUNE,
        *NAN_MODEL,
        "+model.after=choice(3,100000)",
        "~search",
        "trainer.epochs=1",
        "--sampler",
        "grid",
        "--trials",
        "2",
        "--in-process",
        "--study-name",
        "why",
        code=1,
    )
    failed = next(t for t in summary["trials"] if t["state"] == "FAIL")
    assert failed["fail_reason"].startswith("NonFiniteLossError: non-finite training loss")
    capsys.readouterr()
    _print_study(summary, Format.table)  # the terminal table
    table = capsys.readouterr().out
    assert "reason" in table.splitlines()[0] and "NonFiniteLossError: non-finite" in table
    code, out, err = cli("ls", root)  # runlab ls
    assert code == 0, err
    header = next(line for line in out.splitlines() if "status" in line)
    assert "reason" in header
    row = next(line for line in out.splitlines() if "failed" in line)
    assert "NonFiniteLossError: non-finite" in row
    page = data.study_detail(root, "study", "why")  # the dashboard's study page
    reasons = {t["number"]: t["reason"] for t in page["trials"]}
    assert reasons[failed["number"]].startswith("NonFiniteLossError")
    assert None in reasons.values()  # the complete trial has none


def test_a_dead_workers_trials_are_failed_and_asked_again_and_only_theirs(tmp_path: Path) -> None:
    """retry_stale_trials on a journal storage, its clock given: a trial whose run crashed,
    or ended long ago without being told (its worker job was preempted), or that never got a
    run, is failed and enqueued again with retry_of; a live one, one whose run ended moments
    ago (its worker is telling it) or that just started is left alone."""
    import datetime
    import os
    import socket

    import optuna

    from runlab.sweep.study import NO_RUN_GRACE_S, TOLD_GRACE_S, retry_stale_trials

    root, name = tmp_path / "runs", "s"
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))
    )
    study = optuna.create_study(study_name=name, storage=storage)
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    trials = [study.ask(space) for _ in range(6)]
    now = datetime.datetime.now(datetime.timezone.utc)
    clock = now.timestamp()

    def run(trial: Any, status: str, pid: int, ended_ago: float | None) -> None:
        folder = root / f"20260101-000000-{name}-{trial.number:04x}"
        folder.mkdir(parents=True)
        ended = (now - datetime.timedelta(seconds=ended_ago)).isoformat() if ended_ago else None
        (folder / "run.json").write_text(json.dumps({
            "id": folder.name, "name": name, "status": status, "host": socket.gethostname(),
            "pid": pid, "created": now.isoformat(), "ended": ended,
            "parent": f"study:{name}", "trial": trial.number,
        }))  # fmt: skip

    run(trials[0], "running", 2**22 + 7, None)  # its process is gone: crashed
    run(trials[1], "preempted", 0, TOLD_GRACE_S + 30)  # ended long ago, never told
    run(trials[2], "running", os.getpid(), None)  # alive
    run(trials[3], "finished", 0, 5)  # ended moments ago: its worker is telling it
    # trials[4] and [5]: no run yet, just asked
    later = clock + 1.0
    assert retry_stale_trials(study, root, name, now=later) == [0, 1]
    assert retry_stale_trials(study, root, name, now=later) == []  # each retried once
    study.tell(trials[3], 0.5)  # its worker told it
    study.tell(trials[5], 0.5)  # its run came and ended, told
    assert retry_stale_trials(study, root, name, now=clock + NO_RUN_GRACE_S + 1) == [4]
    by_number = {t.number: t for t in study.get_trials()}
    assert "heartbeat is stale" in by_number[0].user_attrs["fail_reason"]
    assert "never told" in by_number[1].user_attrs["fail_reason"]
    assert "before the run started" in by_number[4].user_attrs["fail_reason"]
    assert by_number[2].state.name == "RUNNING"
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert {t.user_attrs["retry_of"]: t.system_attrs["fixed_params"] for t in waiting} == {
        i: trials[i].params for i in (0, 1, 4)
    }
