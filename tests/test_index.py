"""The SQLite index: rebuild, pick-up of copied runs, corrupt runs, queries, load_runs."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

import runlab
from runlab.tracking.expr import parse
from runlab.tracking.index import RunIndex


def make_runs(root: Path, n: int = 3) -> list[runlab.Run]:
    runs = []
    for i in range(n):
        cfg = {"optim": {"lr": 10.0 ** -(i + 2)}}
        with runlab.start_run(
            config=cfg,
            root=root,
            name=f"r{i}",
            tags={"pair": "AB" if i % 2 else "CD"},
            capture_stdout=False,
        ) as run:
            run.log_epoch(0, {"val": {"loss": 1.0 - 0.1 * i}})
        runs.append(run)
    return runs


def test_index_is_wal_and_filled_by_runs(root: Path) -> None:
    make_runs(root)
    with sqlite3.connect(root / "index.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 3


def test_query_where_sort_limit(root: Path) -> None:
    make_runs(root, 4)
    index = RunIndex(root)
    rows, total = index.query(parse("metrics.val_loss < 0.85 and config.optim.lr >= 1e-4"))
    assert sorted(r["name"] for r in rows) == ["r2"] and total == 1
    rows, total = index.query(sort="metrics.val_loss", limit=2)
    assert [r["name"] for r in rows] == ["r3", "r2"] and total == 4
    rows, _ = index.query(sort="-metrics.val_loss")
    assert [r["name"] for r in rows] == ["r0", "r1", "r2", "r3"]
    rows, _ = index.query(parse('tags.pair == "AB"'), sort="name")
    assert [r["name"] for r in rows] == ["r1", "r3"]


def test_copied_in_and_deleted_runs_are_reconciled(root: Path, tmp_path: Path) -> None:
    make_runs(root, 2)
    other = tmp_path / "other"
    (extra,) = make_runs(other, 1)
    shutil.copytree(extra.dir, root / extra.id)  # rsync from another machine
    shutil.rmtree(root / runlab.load_runs(root)[0].id)
    ids = {r.id for r in runlab.load_runs(root)}
    assert extra.id in ids and len(ids) == 2
    with sqlite3.connect(root / "index.db") as con:  # and the index itself was repaired
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


def test_rebuild_from_directories_alone(root: Path) -> None:
    runs = make_runs(root, 3)
    (root / "index.db").unlink()
    for suffix in ("-wal", "-shm"):
        (root / f"index.db{suffix}").unlink(missing_ok=True)
    count, warnings = RunIndex(root).rebuild()
    assert count == 3 and warnings == []
    rows, _ = RunIndex(root).query(sort="created")
    assert [r["id"] for r in rows] == [r.id for r in runs]
    assert rows[0]["config"] == {"optim": {"lr": 0.01}}
    assert rows[0]["metrics"]["val_loss"] == 1.0


def test_corrupt_run_json_is_skipped_with_a_warning(root: Path) -> None:
    runs = make_runs(root, 2)
    (runs[0].dir / "run.json").write_text("{ half a fi")
    (root / "index.db").unlink()
    warnings: list[str] = []
    rows, _ = RunIndex(root).query(warnings=warnings)
    assert [r["id"] for r in rows] == [runs[1].id]
    assert len(warnings) == 1 and runs[0].id in warnings[0] and "unreadable" in warnings[0]
    count, rebuild_warnings = RunIndex(root).rebuild()
    assert count == 1 and len(rebuild_warnings) == 1


def test_load_runs_records_and_frame(root: Path) -> None:
    pd = pytest.importorskip("pandas")
    make_runs(root, 3)
    records = runlab.load_runs(root, where='tags.pair == "CD"')
    assert [r.name for r in records] == ["r0", "r2"]
    assert all(isinstance(r, runlab.RunRecord) for r in records)
    frame = runlab.load_runs(root, as_frame=True)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3
    assert {"id", "status", "metrics.val_loss", "config.optim.lr", "tags.pair"} <= set(frame)
    assert frame["metrics.val_loss"].tolist() == pytest.approx([1.0, 0.9, 0.8])


def test_records_read_everything_back(root: Path) -> None:
    (run,) = make_runs(root, 1)
    record = runlab.RunRecord(run.dir)
    assert record.id == run.id and record.state is runlab.RunState.FINISHED
    assert record.scalars() == [{"epoch": 0, "split": "val", "loss": 1.0}]
    assert record.lookup(("config", "optim", "lr")) == 0.01
    assert record.to_dict()["metrics"]["val_loss"] == 1.0
    info = json.loads((run.dir / "run.json").read_text())
    assert record.info == info


@pytest.mark.parametrize("damage", ["garbage", "truncated", "a folder"])
def test_the_index_is_a_cache_a_damaged_one_never_stops_a_read(
    cli, tmp_path: Path, damage: str
) -> None:
    """A corrupt index.db is set aside and rebuilt; one that cannot be opened (a read-only
    root; here a folder in its place) is replaced by a table in memory. Every read works."""
    root = tmp_path / "runs"
    with runlab.start_run({"lr": 0.1}, root=root, name="kept") as run:
        run.log_epoch(0, {"val": {"loss": 0.5}})
    index = root / "index.db"
    if damage == "garbage":
        index.write_bytes(b"this is not sqlite" * 100)
    elif damage == "truncated":
        index.write_bytes(index.read_bytes()[:100])
    else:
        for path in root.glob("index.db*"):
            path.unlink()
        index.mkdir()
    commands = (["ls", root], ["ls", root, "-f", "json"], ["index", root], ["status", root])
    for n, args in enumerate(commands):
        code, out, err = cli(*args)
        assert code == 0 and "Traceback" not in err, (args, err)
        if damage == "a folder":  # every read says so: nothing can be written
            assert "cannot be used" in err, (args, err)
        elif n == 0:  # the first read rebuilds it; the next ones use it
            assert "set aside as index.db.damaged and rebuilt" in err, err
        else:
            assert "index" not in err, (args, err)
    code, out, _ = cli("ls", root, "-f", "json")
    assert [r["name"] for r in json.loads(out)] == ["kept"]
    code, _, err = cli("show", "kept", "--root", root)
    assert code == 0, err


def _ids(root: Path, warnings: list[str] | None = None) -> set[str]:
    return {r["id"] for r in RunIndex(root).query(warnings=warnings)[0]}


def test_an_unchanged_listing_is_not_compared_name_by_name(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index's own files (-wal, -shm) come and go with every connection; they do not make
    the next read compare every name again."""
    import runlab.tracking.index as index_module

    runs = make_runs(root, 3)
    (root / "studies").mkdir()  # a folder that is not a run
    assert _ids(root) == {r.id for r in runs}
    looked_at: list[str] = []
    real = index_module.is_run_dir
    monkeypatch.setattr(index_module, "is_run_dir", lambda p: looked_at.append(p.name) or real(p))
    full_looks: list[str] = []  # a full look records its listing; an unchanged one does not
    store = index_module._Listing.store
    monkeypatch.setattr(
        index_module._Listing, "store", lambda *a: full_looks.append("x") or store(*a)
    )
    for _ in range(3):
        assert _ids(root) == {r.id for r in runs}
    assert looked_at == ["studies"] * 3 and full_looks == []  # only what was not a run
    (root / "index.db.damaged").write_text("set aside")  # the index's own names: no change
    assert _ids(root) == {r.id for r in runs} and full_looks == []
    (root / "notes").mkdir()
    assert _ids(root) == {r.id for r in runs} and full_looks == ["x"]


def test_a_folder_that_becomes_a_run_without_a_new_name_is_found(
    root: Path, tmp_path: Path
) -> None:
    """rsync makes the folder, then its files: a read in between records the name; the run
    still shows once its run.json is there, though the root lists the same names."""
    make_runs(root, 1)
    (extra,) = make_runs(tmp_path / "other", 1)
    (root / extra.id).mkdir()
    assert extra.id not in _ids(root)
    for name in ("run.json", "metrics.json", "config.yaml"):
        shutil.copy(extra.dir / name, root / extra.id / name)
    assert extra.id in _ids(root)
    assert extra.id in _ids(root)


def test_a_damaged_run_is_reported_on_every_read(root: Path) -> None:
    runs = make_runs(root, 2)
    (runs[0].dir / "run.json").write_text("{ half a fi")
    (root / "index.db").unlink()
    for _ in range(3):
        warnings: list[str] = []
        assert _ids(root, warnings) == {runs[1].id}
        assert len(warnings) == 1 and runs[0].id in warnings[0]


def test_rows_the_listing_does_not_explain_are_reconciled(root: Path, tmp_path: Path) -> None:
    """Same names as at the last full look, but the table disagrees (a run indexed and
    deleted in between, a row lost): the count gives it away and a full look repairs it."""
    runs = make_runs(root, 2)
    assert _ids(root) == {r.id for r in runs}
    (extra,) = make_runs(tmp_path / "other", 1)
    shutil.copytree(extra.dir, root / extra.id)
    RunIndex(root).upsert_run_dir(root / extra.id)  # indexed by its own process ...
    shutil.rmtree(root / extra.id)  # ... and deleted before anyone listed the root
    assert _ids(root) == {r.id for r in runs}
    with sqlite3.connect(root / "index.db") as con:
        con.execute("DELETE FROM runs WHERE id = ?", (runs[0].id,))
    assert _ids(root) == {r.id for r in runs}


def test_rebuild_forgets_the_listing(root: Path) -> None:
    runs = make_runs(root, 2)
    assert _ids(root) == {r.id for r in runs}
    RunIndex(root).rebuild()
    with sqlite3.connect(root / "index.db") as con:
        assert con.execute("SELECT count(*) FROM root_listing").fetchone()[0] == 0
    assert _ids(root) == {r.id for r in runs}
