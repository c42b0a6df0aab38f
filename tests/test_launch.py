"""Launching from the dashboard: recipes are the only things launchable, every change needs the
token in a header and the page's origin (401, 403), a value outside the recipe's schema or one
the preflight refuses is a 422 naming the field, rate and queue limits are 429; a good launch
is queued, audited, run by a worker and becomes a finished run that says who launched it.
The queue as an adversary would use it: a worker killed with kill -9 gives its entry back when
its lease expires, two workers racing run every entry exactly once, a cancel stops a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runlab.queue.store import Queue
from runlab.queue.worker import Worker

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from runlab.web.app import create_app

REPO = Path(__file__).resolve().parents[1]
TOKEN = "launch-token-0123456789ab"
GOOD = {"X-Runlab-Token": TOKEN}
BASE = (
    "data: {source: synthetic.regression, n_samples: 64}\nmodel: {hidden: [4]}\n"
    "trainer: {epochs: 1}\n"
)
FIELDS = (
    "    optim.lr: tag(log, interval(1e-4, 1e-1))\n"
    "    model.hidden: choice([4], [8, 8])\n"
    "    data.n_samples: range(0, 200)\n"
)


def _recipes(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quick.yaml").write_text(
        BASE + "launch:\n  kind: run\n  title: Quick\n  fields:\n" + FIELDS
    )
    (folder / "grid.yaml").write_text(BASE + "launch:\n  kind: sweep\n  fields:\n" + FIELDS)
    (folder / "bowl.yaml").write_text(
        BASE + "loop: tests.helpers:bowl_loop\nx: 0.5\ny: 0.5\n"
        "launch:\n  kind: tune\n  trials: 4\n  fields:\n"
        "    x: interval(0, 1)\n    y: interval(0, 1)\n"
    )
    (folder / "tiny.flow.yaml").write_text(
        "steps:\n  a: {cmd: 'echo a > a.out', outputs: {o: a.out}}\n"
    )
    (folder / "nightly.yaml").write_text("launch: {kind: flow, flow: tiny.flow.yaml}\n")
    (folder / "broken.yaml").write_text("launch: {kind: train}\n")
    (folder / "plain.yaml").write_text(BASE)  # no launch: block: not a recipe
    return folder


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the preflight and the runs import tests.helpers
    root = tmp_path / "runs"
    root.mkdir()
    recipes = _recipes(tmp_path / "recipes")
    return {"root": root, "client": TestClient(create_app(root, TOKEN, recipes=recipes))}


def _launch(client: TestClient, body: dict[str, Any], headers: dict[str, str] = GOOD) -> Any:
    return client.post("/api/launch", json=body, headers=headers)


def test_only_recipes_with_the_token_and_the_pages_origin(site: dict[str, Any]) -> None:
    client = site["client"]
    found = client.get("/api/recipes").json()
    assert found["enabled"] and sorted(r["name"] for r in found["recipes"]) == [
        "bowl", "grid", "nightly", "quick",
    ]  # fmt: skip
    assert found["problems"] == ["broken.yaml: launch.kind 'train': one of run, sweep, tune, flow"]
    body = {"recipe": "quick", "values": {"optim.lr": 0.01}}
    assert _launch(client, body, {}).status_code == 401  # no token, even on loopback
    assert _launch(client, body, {"X-Runlab-Token": "x" * 24}).status_code == 401
    evil = {**GOOD, "Origin": "http://evil.example"}
    assert _launch(client, body, evil).status_code == 403
    assert client.post(f"/api/launch?token={TOKEN}", json=body).status_code == 401
    off = TestClient(create_app(site["root"], TOKEN))  # no --recipes: nothing launchable
    assert off.get("/api/recipes").json()["enabled"] is False
    assert _launch(off, body).status_code == 403
    assert Queue(site["root"]).entries() == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"recipe": "quick", "values": {"trainer.epochs": 3}}, "trainer.epochs", "not a field"),
        ({"recipe": "quick", "values": {"optim.lr": 0.5}}, "optim.lr", "outside 0.0001 to 0.1"),
        ({"recipe": "quick", "values": {"optim.lr": "1e-3; rm -rf /"}}, "optim.lr", "not a number"),
        ({"recipe": "quick", "values": {"model.hidden": [16]}}, "model.hidden", "not one of"),
        ({"recipe": "quick", "values": {"data.n_samples": 2.5}}, "data.n_samples", "whole"),
        ({"recipe": "quick", "launcher": "slurm"}, "launcher", "runs on local"),
        ({"recipe": "../etc/passwd"}, "recipe", "no recipe"),
        ({"recipe": "plain"}, "recipe", "no recipe"),
        ({"recipe": "bowl", "trials": 5}, "trials", "from 1 to 4"),
        ({"recipe": "grid", "values": {"data.n_samples": list(range(3, 70))}}, None, "at most 64"),
        ({"recipe": "quick", "values": {"data.n_samples": 0}}, "data.n_samples", "must be >= 3"),
    ],
)
def test_a_value_outside_the_recipe_is_422_naming_its_field(
    site: dict[str, Any], body: dict[str, Any], field: str | None, words: str
) -> None:
    got = _launch(site["client"], body)
    assert got.status_code == 422, got.text
    assert got.json()["field"] == field and words in got.json()["detail"], got.text
    assert Queue(site["root"]).entries() == []  # nothing queued


def test_a_good_launch_is_queued_audited_and_run_by_a_worker(site: dict[str, Any]) -> None:
    client, root = site["client"], site["root"]
    got = _launch(
        client, {"recipe": "quick", "values": {"optim.lr": "0.003", "model.hidden": [8, 8]}}
    )
    assert got.status_code == 201, got.text
    entry = got.json()["entry"]
    (queued,) = client.get("/api/queue").json()["entries"]
    assert queued["id"] == entry and queued["state"] == "pending" and queued["position"] == 1
    assert Worker(root, poll=0.1).run(once=True) == 1
    (done,) = client.get("/api/queue").json()["entries"]
    assert done["state"] == "done" and done["status"] == "finished", done
    run = json.loads((root / done["run_id"] / "run.json").read_text())
    assert run["status"] == "finished" and run["queue_entry"] == entry
    assert "via runlab ui from testclient" in run["launched_by"]
    config = (root / done["run_id"] / "config.yaml").read_text()
    assert "lr: 0.003" in config and "- 8" in config
    (audit,) = [json.loads(x) for x in (root / "queue" / "audit.jsonl").read_text().splitlines()]
    assert audit["entry"] == entry and audit["values"] == {
        "optim.lr": 0.003,
        "model.hidden": [8, 8],
    }


def test_sweep_tune_and_flow_launches(site: dict[str, Any]) -> None:
    client, root = site["client"], site["root"]
    grid = {"recipe": "grid", "values": {"model.hidden": [[4], [8, 8]], "optim.lr": ["0.01"]}}
    for body in (grid, {"recipe": "bowl", "trials": 3, "seed": 1}, {"recipe": "nightly"}):
        assert _launch(client, body).status_code == 201
    assert Worker(root, slots=2, poll=0.1).run(once=True) == 3
    done = {e["kind"]: e for e in client.get("/api/queue").json()["entries"]}
    assert {e["status"] for e in done.values()} == {"finished"}, done
    sweep = json.loads(next((root / "sweeps").glob("*/sweep.json")).read_text())
    assert [c["status"] for c in sweep["combinations"]] == ["finished", "finished"]
    trials = (root / "studies" / done["tune"]["study"] / "trials.jsonl").read_text().splitlines()
    assert len(trials) == 3
    assert (
        json.loads((root / "flows" / "tiny.flow" / "state.json").read_text())["steps"]["a"][
            "status"
        ]
        == "done"
    )


def test_rate_and_queue_limits(site: dict[str, Any]) -> None:
    codes = [_launch(site["client"], {"recipe": "nightly"}).status_code for _ in range(11)]
    assert codes == [201] * 10 + [429]


def test_cancel_a_pending_and_a_running_launch(site: dict[str, Any], tmp_path: Path) -> None:
    client, root = site["client"], site["root"]
    queue = Queue(root)
    nap = tmp_path / "nap.yaml"
    nap.write_text(BASE + "loop: tests.helpers:picky_loop\nnap: 60\n")
    slow = queue.put({"argv": ["run", str(nap), "-o", str(root), "-f", "json"], "recipe": "nap"})
    waiting = queue.put({"argv": ["ls", str(root)], "recipe": "ls"})
    assert client.post(f"/api/queue/{waiting}/cancel", json={}).status_code == 401
    said = client.post(f"/api/queue/{waiting}/cancel", json={}, headers=GOOD).json()["detail"]
    assert said == "cancelled before it started"
    worker = Worker(root, poll=0.1)
    worker.queue.reclaim()
    worker._start(worker.queue.claim(worker.name), None)
    deadline = time.time() + 60
    while not list(root.glob("*-nap-*/run.json")) and time.time() < deadline:
        time.sleep(0.1)
    client.post(f"/api/queue/{slow}/cancel", json={}, headers=GOOD)
    t0 = time.time()
    worker.run(once=True)
    assert time.time() - t0 < 30  # stopped, not napped out
    states = {e["id"]: e for e in queue.entries()}
    assert states[waiting]["status"] == "cancelled" and states[slow]["status"] == "cancelled"


def test_a_killed_workers_entry_returns_and_runs_once_elsewhere(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    nap = tmp_path / "nap.yaml"
    nap.write_text(BASE + "loop: tests.helpers:picky_loop\nnap: 4\n")
    queue = Queue(root)
    entry = queue.put({"argv": ["run", str(nap), "-o", str(root), "-f", "json"]})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(
        [sys.executable, "-m", "runlab", "worker", str(root), "--lease", "2"], env=env
    )
    deadline = time.time() + 60
    while not list(root.glob("*-nap-*/run.json")) and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # the worker alone: its run is told by the kernel
    first.wait()
    assert [e["state"] for e in queue.entries()] == ["running"]
    time.sleep(2.5)
    done = subprocess.run(
        [sys.executable, "-m", "runlab", "worker", str(root), "--once", "--lease", "2"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (ended,) = queue.entries()
    assert ended["id"] == entry and ended["status"] == "finished" and ended["attempts"] == 2
    runs = sorted(json.loads(p.read_text())["status"] for p in root.glob("*-nap-*/run.json"))
    assert runs == ["finished", "preempted"]  # the first ended with its worker, not raced


def test_two_workers_racing_run_every_entry_once(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    queue = Queue(root)
    ids = [
        queue.put(
            {"argv": ["flow", str(_counting(tmp_path, i)), "-r", str(root)], "cwd": str(tmp_path)}
        )
        for i in range(12)
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "runlab", "worker", str(root), "--once", "--slots", "2"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    logs = [w.communicate(timeout=300)[1] for w in workers]
    entries = {e["id"]: e for e in queue.entries()}
    assert sorted(entries) == sorted(ids)
    assert all(e["state"] == "done" and e["attempts"] == 1 for e in entries.values())
    assert sorted((tmp_path / "count.log").read_text().split()) == sorted(map(str, range(12)))
    assert sum(log.count(": started") for log in logs) == 12


def _counting(folder: Path, i: int) -> Path:
    path = folder / f"count{i}.yaml"
    path.write_text(f"name: c{i}\nsteps:\n  s: {{cmd: 'echo {i} >> count.log', cache: never}}\n")
    return path


def test_worker_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args, words in [
        (["--slots", "0"], "--slots 0"),
        (["--gpus", "a,b"], "GPU numbers"),
        (["--gpus", "0", "--slots", "2"], "1 GPUs for 2 slots"),
        (["--lease", "1"], "--lease"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "runlab", "worker", str(tmp_path / "r"), *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    for args, words in [
        (["--recipes", str(tmp_path / "none")], "not a folder"),
        (["--worker"], "give --recipes"),
    ]:
        (tmp_path / "r").mkdir(exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "runlab", "ui", str(tmp_path / "r"), *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2 and words in done.stderr, done.stderr


def test_the_example_recipes_load_and_pass_their_preflight(tmp_path: Path) -> None:
    from runlab.queue.plan import plan, preflight
    from runlab.queue.recipes import load_recipes

    found, problems = load_recipes(REPO / "examples" / "recipes")
    assert sorted(found) == ["lr_grid", "quickstart"] and problems == []
    launch = plan(found["quickstart"], {"values": {"trainer.epochs": 1}}, tmp_path)
    assert launch.argv[:2] == ["run", str(REPO / "examples" / "recipes" / "quickstart.yaml")]
    preflight(launch, list(found["quickstart"].fields))  # raises when the preflight fails


@pytest.mark.slurm
def test_worker_jobs_on_slurm_run_the_queue(slurm: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    config = tmp_path / "tiny.yaml"
    config.write_text(BASE)
    queue = Queue(root)
    ids = [
        queue.put({"argv": ["run", str(config), "-o", str(root), "-f", "json"], "launched_by": "t"})
        for _ in range(2)
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "runlab", "worker", str(root), "--submit", "slurm",
         "--workers", "2"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and "submitted 2 worker job(s) to slurm" in done.stdout, done.stderr
    deadline = time.time() + 240
    while time.time() < deadline and any(e["state"] != "done" for e in queue.entries()):
        time.sleep(0.5)
    entries = {e["id"]: e for e in queue.entries()}
    assert sorted(entries) == sorted(ids)
    for entry in entries.values():
        assert entry["status"] == "finished" and entry["attempts"] == 1, entry
        run = json.loads((root / entry["run_id"] / "run.json").read_text())
        assert run["scheduler"]["name"] == "slurm" and run["launched_by"] == "t"


def test_submit_needs_a_scheduler(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runlab", "worker", str(tmp_path / "r"), "--submit", "local"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "a scheduler (slurm, htcondor)" in done.stderr, done.stderr


def test_a_recipe_cannot_make_a_secret_a_form_field() -> None:
    from runlab.errors import ConfigError
    from runlab.queue.recipes import parse_field

    for key in ("db.password", "wandb.api_key", "auth_token"):
        with pytest.raises(ConfigError, match="is a secret"):
            parse_field(key, "choice(a, b)")
    assert parse_field("optim.lr", "interval(0.1, 1)").high == 1.0


def test_each_slot_gets_its_own_gpu(tmp_path: Path) -> None:
    """--gpus 0,1 with two slots: the two launches running at once see different
    CUDA_VISIBLE_DEVICES (no GPU needed to check the hand-out)."""
    root = tmp_path / "runs"
    root.mkdir()
    queue = Queue(root)
    for i in range(2):
        flow = tmp_path / f"gpu{i}.yaml"
        flow.write_text(
            f"name: g{i}\nsteps:\n  s: {{cmd: 'echo $CUDA_VISIBLE_DEVICES >> gpus.log; "
            f"sleep 1', cache: never}}\n"
        )
        queue.put({"argv": ["flow", str(flow), "-r", str(root)], "cwd": str(tmp_path)})
    assert Worker(root, slots=2, gpus=["0", "1"], poll=0.1).run(once=True) == 2
    assert sorted((tmp_path / "gpus.log").read_text().split()) == ["0", "1"]


@pytest.mark.htcondor
def test_worker_jobs_on_htcondor_run_the_queue(htcondor: Path) -> None:
    """Worker jobs on HTCondor run as the pool's own user: the root is shared with it (made
    with umask 0, as tests/test_htcondor.py's roots are)."""
    work = htcondor / "queue-work"
    old = os.umask(0)
    try:
        work.mkdir(mode=0o777)
        root = work / "runs"
        root.mkdir()
        config = work / "tiny.yaml"
        config.write_text(BASE)
        queue = Queue(root)
        ident = queue.put(
            {"argv": ["run", str(config), "-o", str(root), "-f", "json"], "launched_by": "t"}
        )
    finally:
        os.umask(old)
    done = subprocess.run(
        [sys.executable, "-m", "runlab", "worker", str(root), "--submit", "htcondor"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=120, cwd=work, preexec_fn=lambda: os.umask(0),
    )  # fmt: skip
    assert done.returncode == 0 and "to htcondor" in done.stdout, done.stderr
    deadline = time.time() + 240
    while time.time() < deadline and any(e["state"] != "done" for e in queue.entries()):
        time.sleep(0.5)
    (entry,) = queue.entries()
    logs = "".join(p.read_text() for p in (root / "queue" / "jobs").rglob("logs/*.err"))
    assert entry["id"] == ident and entry.get("status") == "finished", (entry, logs[-2000:])
    run = json.loads((root / entry["run_id"] / "run.json").read_text())
    assert run["scheduler"]["name"] == "htcondor" and run["user"] == "runlab"


def test_a_damaged_entry_is_set_aside_not_run(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    queue = Queue(root)
    good = queue.put({"argv": ["ls", str(root)], "recipe": "ls"})
    pending = root / "queue" / "pending"
    (pending / "00000000-half.json").write_text('{"argv": ["ls"')  # torn
    (pending / "00000001-list.json").write_text("[1, 2]")  # not an entry
    (pending / "00000002-noargv.json").write_text('{"id": "x"}')
    assert Worker(root, poll=0.1).run(once=True) == 1
    assert [e["id"] for e in queue.entries()] == [good]
    assert sorted(p.name for p in (root / "queue" / "done").glob("*.damaged")) == [
        "00000000-half.damaged", "00000001-list.damaged", "00000002-noargv.damaged",
    ]  # fmt: skip
