"""runlab ls / show / index from the command line: formats, errors, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import runlab
from tests.test_index import make_runs


def test_ls_formats(cli, root: Path) -> None:
    make_runs(root, 3)
    code, out, err = cli("ls", root)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["id", "status", "name", "created", "duration"]
    assert "val_loss" in lines[0] and len(lines) == 4
    assert lines[1].split()[2] == "r2"  # newest first

    code, out, _ = cli("ls", root, "--format", "json")
    data = json.loads(out)
    assert [d["name"] for d in data] == ["r2", "r1", "r0"]
    assert data[0]["metrics"]["val_loss"] == 0.8 and data[0]["tags"] == {"pair": "CD"}

    code, out, _ = cli("ls", root, "-f", "csv", "-c", "name,config.optim.lr", "--sort", "name")
    assert list(csv.reader(io.StringIO(out))) == [
        ["name", "config.optim.lr"],
        ["r0", "0.01"],
        ["r1", "0.001"],
        ["r2", "0.0001"],
    ]
    code, out, _ = cli("ls", root, "-f", "md", "-c", "name", "-c", "status", "-n", "1")
    assert out.splitlines() == ["| name | status |", "| --- | --- |", "| r2 | finished |"]


def test_ls_where_and_limit_footer(cli, root: Path) -> None:
    make_runs(root, 3)
    code, out, _ = cli("ls", root, "--where", "metrics.val_loss < 0.95", "-f", "json")
    assert sorted(d["name"] for d in json.loads(out)) == ["r1", "r2"]
    code, out, _ = cli("ls", root, "--limit", "2")
    assert "2 of 3 runs shown" in out
    code, out, _ = cli("ls", root, "--where", 'name == "nope"')
    assert code == 0 and "no runs" in out


def test_ls_uses_runlab_root(cli, root: Path, monkeypatch) -> None:
    make_runs(root, 1)
    monkeypatch.setenv("RUNLAB_ROOT", str(root))
    code, out, _ = cli("ls", "-f", "json")
    assert code == 0 and len(json.loads(out)) == 1


def test_bad_expression_is_one_line_exit_2(cli, root: Path) -> None:
    make_runs(root, 1)
    code, out, err = cli("ls", root, "--where", "metrics.val_loss <")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("runlab: error: expected a value, found 'end of expression' at column")


def test_debug_shows_the_traceback(cli, root: Path) -> None:
    code, _, err = cli("--debug", "ls", root, "--where", "(")
    assert code == 2 and "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith("runlab: error: expected a value")


def test_show_by_id_prefix_name_and_path(cli, root: Path) -> None:
    runs = make_runs(root, 2)
    target = runs[0]
    for ref in (target.id, target.id[:-2], "r0", str(target.dir)):
        code, out, err = cli("show", ref, "--root", root, "-f", "json")
        assert code == 0, err
        assert json.loads(out)["id"] == target.id
    code, out, _ = cli("show", "r0", "--root", root)
    assert target.id in out and "finished" in out and "val_loss" in out and "optim" in out


def test_show_by_a_reused_name_gives_the_newest_with_a_note(cli, root: Path) -> None:
    older = make_runs(root, 1)[0]
    newer = make_runs(root, 1)[0]  # same name, r0
    code, out, err = cli("show", "r0", "--root", root, "-f", "json")
    assert code == 0 and json.loads(out)["id"] == newer.id != older.id
    assert err == (
        f"runlab: note: 2 runs are named 'r0'; showing the newest, {newer.id} "
        "(give an id to pick another)\n"
    )


def test_show_errors(cli, root: Path) -> None:
    runs = make_runs(root, 2)
    code, _out, err = cli("show", "nope", "--root", root)
    assert code == 2 and "no run 'nope'" in err and err.count("\n") == 1
    prefix = runs[0].id[:8]  # both runs were made the same day
    code, _, err = cli("show", prefix, "--root", root)
    assert code == 2 and "matches 2 runs" in err
    assert runs[0].id in err and runs[1].id in err
    (runs[1].dir / "run.json").write_text("not json")
    code, _, err = cli("show", str(runs[1].dir))
    assert code == 2 and "unreadable" in err and err.count("\n") == 1


def test_ls_skips_corrupt_runs_with_a_warning(cli, root: Path) -> None:
    runs = make_runs(root, 2)
    (runs[0].dir / "run.json").write_text("{")
    (root / "index.db").unlink()
    code, out, err = cli("ls", root, "-f", "json")
    assert code == 0 and [d["id"] for d in json.loads(out)] == [runs[1].id]
    assert err.startswith("runlab: warning: skipped " + runs[0].id)


def test_index_command(cli, root: Path, tmp_path: Path) -> None:
    make_runs(root, 2)
    code, out, _ = cli("index", root)
    assert code == 0 and out.startswith("indexed 2 runs in ")
    code, _, err = cli("index", tmp_path / "missing")
    assert code == 2 and "does not exist" in err


def test_version_and_module_entry_point(cli) -> None:
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"runlab {runlab.__version__}"
    proc = subprocess.run(
        [sys.executable, "-m", "runlab", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert all(cmd in proc.stdout for cmd in ("ls", "show", "index"))


def test_unknown_option_is_a_usage_error(cli) -> None:
    code, _, err = cli("ls", "--frobnicate")
    assert code == 2 and "No such option" in err
