"""Code snapshots and runlab reproduce, against real git: a dirty repository's diff kept in the
run (secrets out, still applicable), a clean one keeps none, and reproduce --exec rebuilds the
tree in a worktree (the user's own untouched) and reruns to the same numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-live-4f9a8b7c6d5e"  # planted in a dirty file: no byte of a run may hold it
GIT = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]


def _cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runlab", *map(str, args)],
        capture_output=True, text=True, timeout=300, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    (repo / "configs").mkdir(parents=True)
    (repo / "configs" / "train.yaml").write_text(
        "data: {source: synthetic.regression, n_samples: 256}\nmodel: {hidden: [8]}\n"
        "trainer: {epochs: 1}\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "first"], cwd=repo, check=True)
    return repo


def _run(repo: Path, *args: str) -> Path:
    done = _cli(
        "run", "configs/train.yaml", *args, "-o", repo.parent / "runs", "-f", "json", cwd=repo
    )
    assert done.returncode == 0, done.stderr
    return Path(json.loads(done.stdout.strip().splitlines()[-1])["run_dir"])


def test_a_dirty_tree_is_kept_and_reproduced_in_a_worktree(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "configs" / "train.yaml").write_text(
        "data: {source: synthetic.regression, n_samples: 256}\nmodel: {hidden: [16, 4]}\n"
        "trainer: {epochs: 2}\n"
    )  # dirty: what the run ran is not the commit
    (repo / "settings.py").write_text(f'API_KEY = "{SECRET}"\nrows = 3\n')
    subprocess.run(["git", "add", "-N", "settings.py"], cwd=repo, check=True)
    before = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)
    run = _run(repo, "optim.lr=0.003")
    git = json.loads((run / "run.json").read_text())["git"]
    diff = (run / "code" / "git.diff").read_bytes()
    assert git["dirty"] and git["diff"] == "code/git.diff" and git["diff_bytes"] == len(diff)
    import hashlib

    assert git["diff_sha256"] == hashlib.sha256(diff).hexdigest()
    assert git["diff_redacted_lines"] == 1 and b'+API_KEY = "***"\n' in diff
    assert b"hidden: [16, 4]" in diff and b"rows = 3" in diff
    for path in run.rglob("*"):  # the planted secret is in no byte of the run
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path

    shown = _cli("reproduce", run, cwd=repo)
    assert shown.returncode == 0, shown.stderr
    assert git["commit"] in shown.stdout and "apply --binary" in shown.stdout
    into = tmp_path / "again"
    done = _cli("reproduce", run, "--exec", "--dir", into, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (into / "configs" / "train.yaml").read_text() == (
        repo / "configs" / "train.yaml"
    ).read_text()  # the diff applied on the commit
    assert (
        before.stdout
        == subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True).stdout
    )  # the user's own tree untouched
    rows = [json.loads(p.read_text()) for p in (repo.parent / "runs").glob("*/run.json")]
    again = [r for r in rows if r.get("tags", {}).get("reproduces") == run.name]
    assert (
        len(again) == 1 and again[0]["seed"] == json.loads((run / "run.json").read_text())["seed"]
    )
    first = json.loads((run / "metrics.json").read_text())
    second = json.loads((repo.parent / "runs" / again[0]["id"] / "metrics.json").read_text())
    assert second["val_loss"] == pytest.approx(first["val_loss"], rel=1e-6)
    assert second["last_epoch"] == 2  # the dirty config's epochs, not the commit's


def test_a_clean_tree_keeps_no_diff_and_bad_input_is_one_line(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    run = _run(repo)
    git = json.loads((run / "run.json").read_text())["git"]
    assert git["dirty"] is False and "diff" not in git and not (run / "code").exists()
    for args, words in [
        (["nosuch-run"], "no run 'nosuch-run'"),
        ([run, "--exec", "--dir", tmp_path], "exists: give a new folder"),
    ]:
        done = _cli("reproduce", *args, "-r", repo.parent / "runs", cwd=repo)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    secret = _run(repo, "+db.password=hunter2hunter2")  # redacted in config.yaml
    done = _cli("reproduce", secret, "--exec", cwd=repo)
    assert done.returncode == 2 and "redacted secrets" in done.stderr


def test_a_diff_over_the_cap_is_named_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runlab import _provenance

    repo = _repo(tmp_path)
    (repo / "configs" / "train.yaml").write_text("x" * 5000)
    monkeypatch.setattr(_provenance, "DIFF_CAP", 1000)
    said = _provenance.git_diff(str(repo))
    assert isinstance(said, str) and "over the 0 MiB cap" in said
    monkeypatch.setattr(_provenance, "DIFF_CAP", 10**6)
    assert b"x" * 5000 in _provenance.git_diff(str(repo))
