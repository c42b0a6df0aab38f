"""Notes and tags after the fact: the dashboard's calls need the token in a header (401) and
the page's own origin (403), bad values are 422; edits survive a live run's own rewrites of
run.json, are indexed (runlab ls --where), and reach MLflow and W&B on the next sync (read back
with MlflowClient and W&B's transaction log)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runlab
from runlab.tracking.expr import parse
from runlab.tracking.index import RunIndex
from runlab.tracking.record import RunRecord
from tests.web_helpers import make_run

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from runlab.web.app import create_app

TOKEN = "annotate-token-0123456789"
GOOD = {"X-Runlab-Token": TOKEN}


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "runs"
    run = make_run(root, "annotated", 1e-3, [1.0, 0.5])
    return {"root": root, "run": run.id, "client": TestClient(create_app(root, TOKEN))}


def test_token_origin_and_values_are_checked(site: dict[str, Any]) -> None:
    client, url = site["client"], f"/api/runs/{site['run']}"
    body = {"tags": {"pair": "AAPL_MSFT"}}
    assert client.put(f"{url}/tags", json=body).status_code == 401  # no token, even on loopback
    bad = {"X-Runlab-Token": "wrong-token-0123456789"}
    assert client.put(f"{url}/tags", json=body, headers=bad).status_code == 401
    cookie = client.put(f"{url}/notes?token={TOKEN}", json={"text": "x"})
    assert cookie.status_code == 401  # a query or cookie token is not enough for a change
    other = {**GOOD, "Origin": "http://evil.example"}
    assert client.put(f"{url}/tags", json=body, headers=other).status_code == 403
    same = {**GOOD, "Origin": "http://testserver"}
    assert client.put(f"{url}/tags", json=body, headers=same).status_code == 200
    for what, payload, words in [
        ("tags", {"tags": {"api_key": "x"}}, "secret-named"),
        ("tags", {"tags": {"a b": 1}}, "letters, digits"),
        ("tags", {"tags": {"k": [1, 2]}}, "a value is text"),
        ("tags", {"tags": "pair=x"}, "a mapping"),
        ("notes", {"text": "x" * 100_001}, "over the 100000"),
        ("notes", {"text": 7}, "give text"),
    ]:
        got = client.put(f"{url}/{what}", json=payload, headers=GOOD)
        assert got.status_code == 422 and words in got.json()["detail"], got.text
    assert client.put(f"{url}/notes", content=b"[1]", headers=GOOD).status_code == 422
    assert client.put("/api/runs/nosuch/notes", json={"text": "x"}, headers=GOOD).status_code == 404
    assert RunRecord(site["root"] / site["run"]).tags == {"pair": "AAPL_MSFT"}  # only the good


def test_edits_are_kept_shown_and_indexed(site: dict[str, Any]) -> None:
    client, root, run = site["client"], site["root"], site["run"]
    url = f"/api/runs/{run}"
    got = client.put(f"{url}/tags", json={"tags": {"pair": "AAPL_MSFT", "n": 3}}, headers=GOOD)
    assert got.json()["tags"] == {"pair": "AAPL_MSFT", "n": 3}
    client.put(f"{url}/notes", json={"text": "# Look\nleakage suspected"}, headers=GOOD)
    assert (root / run / "notes.md").read_text() == "# Look\nleakage suspected"
    detail = client.get(url).json()
    assert detail["notes"].endswith("leakage suspected") and detail["tags"]["n"] == 3
    index = RunIndex(root)
    found = index.query(parse("tags.pair == 'AAPL_MSFT' and 'leakage' in notes"))[0]
    assert [r["id"] for r in found] == [run]
    assert client.get("/api/runs", params={"where": "tags.n == 3"}).json()["total"] == 1
    client.put(f"{url}/tags", json={"tags": {"n": 4}}, headers=GOOD)  # pair removed
    assert RunRecord(root / run).tags == {"n": 4}
    assert index.query(parse("tags.pair == 'AAPL_MSFT'"))[0] == []
    index.rebuild()  # from the files alone
    assert [r["id"] for r in index.query(parse("tags.n == 4 and 'leakage' in notes"))[0]] == [run]


def test_an_edit_made_while_the_run_lives_is_not_undone_by_it(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    client = TestClient(create_app(root, TOKEN))
    run = runlab.start_run({}, root=root, name="live", tags={"stage": "a"}, capture_stdout=False)
    try:
        got = client.put(f"/api/runs/{run.id}/tags", json={"tags": {"stage": "b"}}, headers=GOOD)
        assert got.status_code == 200
        for epoch in range(3):  # the run rewrites run.json (its own tags) meanwhile
            run.log_epoch(epoch, {"train": {"loss": 1.0}})
            run.update_info(extra=epoch)
    finally:
        run.finish()
    assert json.loads((run.dir / "run.json").read_text())["tags"] == {"stage": "a"}
    assert RunRecord(run.dir).tags == {"stage": "b"}
    assert [r["id"] for r in RunIndex(root).query(parse("tags.stage == 'b'"))[0]] == [run.id]


def test_two_editors_at_once_lose_nothing(site: dict[str, Any]) -> None:
    from runlab.tracking.annotate import set_tags

    path = site["root"] / site["run"]
    threads = [
        threading.Thread(target=set_tags, args=(path, {}, {f"k{i}": i}, [])) for i in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert RunRecord(path).tags == {f"k{i}": i for i in range(16)}


def test_cli_note_and_tag(cli: Callable[..., Any], tmp_path: Path) -> None:
    root = tmp_path / "runs"
    run = make_run(root, "cli-notes", 1e-3, [1.0])
    assert cli("tag", run.id, "pair=AAPL_MSFT", "n=3", "-r", root)[1] == "pair=AAPL_MSFT\nn=3\n"
    assert cli("tag", run.id, "--remove", "n", "-r", root)[1] == "pair=AAPL_MSFT\n"
    assert cli("note", run.id, "first", "-r", root)[0] == 0
    assert cli("note", run.id, "second", "--append", "-r", root)[0] == 0
    assert cli("note", run.id, "-r", root)[1] == "first\nsecond\n"
    code, out, _ = cli("ls", root, "--where", "'second' in notes", "-f", "json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [run.id]
    code, _, err = cli("tag", run.id, "bad key=1", "-r", root)
    assert code == 2 and "write key=value" in err
    code, _, err = cli("tag", run.id, "password=hunter2", "-r", root)
    assert code == 2 and "secret-named" in err


def test_the_next_sync_mirrors_edited_notes_and_tags(
    cli: Callable[..., Any], tmp_path: Path, stores: dict[str, Any]
) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    from mlflow import MlflowClient

    from tests.sink_helpers import wandb_records

    uri = stores["uri"]
    root = tmp_path / "runs"
    run = make_run(root, "to-mirror", 1e-3, [1.0, 0.7])
    sinks = ["--sink", "mlflow", "--sink", "wandb"]
    code, out, err = cli("sync", root, *sinks, "-f", "json")
    assert code == 0 and [r["outcome"] for r in json.loads(out)] == ["synced"] * 2, err
    assert [r["outcome"] for r in json.loads(cli("sync", root, *sinks, "-f", "json")[1])] == [
        "already synced"
    ] * 2
    cli("note", run.id, "looks overfit after epoch 1", "-r", root)
    cli("tag", run.id, "verdict=reject", "-r", root)
    code, out, _ = cli("sync", root, *sinks, "-f", "json")
    assert [r["outcome"] for r in json.loads(out)] == ["replaced"] * 2
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("runlab")
    (ml,) = client.search_runs([experiment.experiment_id], f"tags.`runlab.run_id` = '{run.id}'")
    assert ml.data.tags["mlflow.note.content"] == "looks overfit after epoch 1\n"
    assert ml.data.tags["verdict"] == "reject"
    (offline,) = stores["wandb"].glob(f"offline-run-*-{run.id}")
    (wrun,) = [r for kind, r in wandb_records(offline) if kind == "run"]
    assert wrun.run.notes == "looks overfit after epoch 1\n" and "verdict=reject" in wrun.run.tags
    time.sleep(0)
    again = json.loads(cli("sync", root, *sinks, "-f", "json")[1])
    assert [r["outcome"] for r in again] == ["already synced"] * 2
