"""One odd file in one run: that run is shown as damaged (or refused in one line), every other
run, and every read command and dashboard page, keep working. Each row damages one file of
one run; the table is the place to add the next odd file found."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runlab

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from runlab.web.app import create_app


def _json_edit(change: Callable[[Any], Any]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return edit


def _text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text)


DAMAGE = {
    "pid is text": ("run.json", _json_edit(lambda d: {**d, "pid": "abc", "status": "running"})),
    "pid is a float": ("run.json", _json_edit(lambda d: {**d, "pid": 1.5, "status": "running"})),
    "run.json is a list": ("run.json", _text("[1, 2]")),
    "run.json is torn": ("run.json", _text('{"id": "x", "na')),
    "tags are a list": ("run.json", _json_edit(lambda d: {**d, "tags": ["a"]})),
    "created is a number": ("run.json", _json_edit(lambda d: {**d, "created": 5})),
    "status unknown": ("run.json", _json_edit(lambda d: {**d, "status": "exploded"})),
    "heartbeat is a list": ("heartbeat.json", _text("[1]")),
    "heartbeat interval text": (
        "heartbeat.json",
        _text('{"time": "soon", "interval": "x", "status": "running"}'),
    ),
    "metrics is a list": ("metrics.json", _text("[1]")),
    "metrics val is text": ("metrics.json", _json_edit(lambda d: {**d, "val": "x"})),
    "metrics torn": ("metrics.json", _text('{"val": {"loss": 0.')),
    "config bad yaml": ("config.yaml", _text("a: [1,\n")),
    "config is a list": ("config.yaml", _text("- 1\n- 2\n")),
    "overrides not a list": ("overrides.yaml", _text("a: 1\n")),
    "events line is an array": ("events.jsonl", _text("[1,2]\n")),
    "events garbage": ("events.jsonl", _text("{not json\n\x00\xff\n")),
    "scalars garbage": ("scalars.csv", _text("epoch,split,loss\nx,y,z\n,,\n")),
    "scalars binary": ("scalars.csv", lambda p: p.write_bytes(b"\xff\xfe\x00garbage")),
    "steps garbage": ("steps.jsonl", _text('[1]\n"a"\n{"step": "x", "loss": "y"}\n')),
    "stdout binary": ("stdout.log", lambda p: p.write_bytes(b"\xff\xfe\x80")),
}

READS = [
    ["ls", "{root}"],
    ["ls", "{root}", "-f", "json"],
    ["show", "{good}", "--root", "{root}"],
    ["show", "{bad}", "--root", "{root}"],
    ["show", "{bad}", "--root", "{root}", "-f", "json"],
    ["export", "{root}"],
    ["compare", "{good}", "{bad}", "--root", "{root}"],
    ["diff", "{good}", "{bad}", "--root", "{root}"],
    ["status", "{root}", "--recent", "5"],
    ["logs", "{bad}", "--root", "{root}"],
]
PAGES = [
    "/api/runs",
    "/api/runs?sort=-metrics.val_loss",
    "/api/runs/{good}",
    "/api/runs/{bad}",
    "/api/runs/{bad}/series",
    "/api/runs/{bad}/stdout",
    "/api/runs/{bad}/backtests",
    "/api/compare?ids={good},{bad}",
    "/api/studies",
]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("damage") / "runs"
    ids = {}
    for name, loss in (("good", 1.0), ("bad", 2.0)):
        with runlab.start_run({"lr": loss}, root=root, name=name) as run:
            run.log({"loss": loss})
            run.log_epoch(0, {"val": {"loss": loss}})
            print("training")
        ids[name] = run.id
    return {"root": root, **ids}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_one_damaged_file_breaks_nothing_else(
    cli: Callable[..., Any], two_runs: dict[str, Any], tmp_path: Path, case: str
) -> None:
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(two_runs["root"], root)
    (root / "index.db").unlink(missing_ok=True)
    name, damage = DAMAGE[case]
    damage(root / two_runs["bad"] / name)
    places = {"root": str(root), "good": two_runs["good"], "bad": two_runs["bad"]}
    for args in READS:
        code, out, err = cli(*[a.format(**places) for a in args])
        assert "Traceback" not in err and code in (0, 2), (args, code, err[-2000:])
        if code == 2:  # refused: one line that names the run
            assert err.count("\n") == 1 and two_runs["bad"] in err, (args, err)
    code, out, _ = cli("ls", root, "-f", "json")
    assert two_runs["good"] in [r["id"] for r in json.loads(out)]
    client = TestClient(create_app(root, "t" * 20), raise_server_exceptions=False)
    for page in PAGES:
        response = client.get(page.format(**places))
        assert response.status_code < 500, (page, response.status_code, response.text[-500:])
    listed = client.get("/api/runs").json()
    assert two_runs["good"] in [r["id"] for r in listed["rows"]]


@pytest.mark.parametrize(
    ("content", "what"),
    [
        ("[1]", "a list"),
        ('{"combinations": [{"index": 0, "run_id": "../outside", "overrides": [1]}]}', "escape"),
        ('{"combinations": 5, "varying": 3}', "wrong types"),
        ("{torn", "torn"),
    ],
)
def test_a_damaged_sweep_or_study_is_skipped_not_fatal(
    two_runs: dict[str, Any], tmp_path: Path, content: str, what: str
) -> None:
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(two_runs["root"], root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "run.json").write_text('{"id": "outside", "secret": "leak"}')
    (root / "sweeps" / "s1").mkdir(parents=True)
    (root / "sweeps" / "s1" / "sweep.json").write_text(content)
    (root / "studies" / "st").mkdir(parents=True)
    (root / "studies" / "st" / "trials.jsonl").write_text('[1]\n{"number": 0}\n{bad\n')
    (root / "studies" / "st" / "study.json").write_text("[1]")
    client = TestClient(create_app(root, "t" * 20), raise_server_exceptions=False)
    for page in ("/api/studies", "/api/studies/sweep/s1", "/api/studies/study/st"):
        response = client.get(page)
        assert response.status_code < 500, (what, page, response.text[-500:])
        assert "leak" not in response.text


def test_a_run_directory_that_links_out_of_the_root_is_not_served(
    two_runs: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(two_runs["root"], root)
    outside = tmp_path / "elsewhere" / "20260101-000000-x-0000"
    shutil.copytree(root / two_runs["good"], outside)
    (root / "20260101-000000-x-0000").symlink_to(outside, target_is_directory=True)
    client = TestClient(create_app(root, "t" * 20), raise_server_exceptions=False)
    assert client.get("/api/runs/20260101-000000-x-0000").status_code == 404
    files = "/api/runs/20260101-000000-x-0000/files/config.yaml"
    assert client.get(files).status_code == 404
