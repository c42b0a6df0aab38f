"""runlab sweep: grids in Hydra's grammar, run in parallel child processes, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import runlab
from runlab.sweep.grid import expand

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "examples" / "quickstart.yaml")


def test_expand_uses_hydra_grammar() -> None:
    combos, varying = expand(["a=1,2", "b=range(1,4)", "c=x", "+d=p,q", "~e"])
    assert len(combos) == 2 * 3 * 2 and varying == ["a", "b", "d"]
    assert combos[0] == ["a=1", "b=1", "c=x", "+d=p", "~e"]
    assert combos[-1] == ["a=2", "b=3", "c=x", "+d=q", "~e"]


def test_sweep_runs_every_combination_in_parallel(cli, root: Path) -> None:
    code, out, err = cli(
        "sweep",
        QUICK,
        "optim.lr=0.001,0.003",
        "model.hidden=[16],[32]",
        "trainer.epochs=1",
        "--jobs",
        "2",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 0, err
    result = json.loads(out)
    sweep = json.loads(Path(result["path"]).read_text())
    assert sweep["varying"] == ["optim.lr", "model.hidden"] and len(sweep["combinations"]) == 4
    runs = result["runs"]
    assert {r["status"] for r in runs} == {"finished"}
    losses = [r["val.loss"] for r in runs]
    assert losses == sorted(losses)  # sorted by the objective
    for r in runs:
        info = runlab.RunRecord(root / r["run_id"]).info
        assert info["parent"] == result["sweep_id"] and info["trial"] == r["index"]
        assert runlab.RunRecord(root / r["run_id"]).config["optim"]["lr"] == float(r["optim.lr"])
    listed = runlab.load_runs(root, where=f'parent == "{result["sweep_id"]}"')
    assert len(listed) == 4
    # watch --sweep finds the sweep's runs and, the sweep being done, returns at once
    code, out, err = cli("watch", "--sweep", result["sweep_id"], "--root", root)
    assert code == 0, err
    assert sorted(line.split()[1] for line in out.splitlines() if line.startswith("╭─")) == sorted(
        r["run_id"] for r in runs
    )
    # the dashboard's sweep page: every combination, its params, its objective, the best
    from runlab.web import data

    listed = data.studies(root)
    assert [(s["kind"], s["name"], s["trials"], s["complete"]) for s in listed] == [
        ("sweep", result["sweep_id"], 4, 4)
    ]
    page = data.study_detail(root, "sweep", result["sweep_id"])
    assert page["params"] == ["model.hidden", "optim.lr"] and page["objectives"] == ["val.loss"]
    assert page["best"]["run_id"] == runs[0]["run_id"]
    assert page["best"]["values"] == [pytest.approx(losses[0])]
    assert {t["params"]["optim.lr"] for t in page["trials"]} == {0.001, 0.003}


def test_resume_reruns_only_unfinished(cli, root: Path) -> None:
    # after=25: NaN in epoch 2 (20 steps an epoch), past the preflight's 2 batches: a failed run
    args = [
        QUICK,
        "~model",
        "+model._target_=tests.helpers.NaNAfter",
        "+model.after=25,100000",
        "trainer.epochs=2",
        "-o",
        root,
        "-f",
        "json",
    ]
    code, out, err = cli("sweep", *args)
    first = json.loads(out)
    status = {r["index"]: r["status"] for r in first["runs"]}
    assert status == {0: "failed", 1: "finished"}
    # a failed run is in the exit code, with one line naming it (the JSON is still printed)
    failed_id = next(r["run_id"] for r in first["runs"] if r["index"] == 0)
    assert code == 1 and err.startswith(f"runlab: 1 of 2 runs failed (#0 {failed_id})"), err
    reasons = {r["index"]: r["reason"] for r in first["runs"]}  # why, in the sweep's table
    assert reasons[0].startswith("NonFiniteLossError: non-finite") and reasons[1] is None
    from runlab.web import data

    page = data.study_detail(root, "sweep", first["sweep_id"])  # and on its dashboard page
    assert {t["number"]: t["reason"] is not None for t in page["trials"]} == {0: True, 1: False}
    finished_id = next(r["run_id"] for r in first["runs"] if r["index"] == 1)
    code, out, err = cli("sweep", "--resume", first["sweep_id"], "-o", root, "-f", "json")
    assert code == 1, err  # it fails again
    again = json.loads(out)
    assert again["sweep_id"] == first["sweep_id"]
    sweep = json.loads(Path(again["path"]).read_text())
    assert len(sweep["combinations"][0]["attempts"]) == 2  # retried, as a new run
    assert sweep["combinations"][1]["attempts"] == [finished_id]  # not rerun, not overwritten
    run_dirs = [p for p in root.iterdir() if p.is_dir() and (p / "run.json").exists()]
    assert len(run_dirs) == 3


TREE = REPO / "examples" / "configs" / "experiment.yaml"


def _hydra_basic_sweeper(config: Path, overrides: list[str]) -> list[list[str]]:
    """The reference: Hydra's BasicSweeper splitting the same overrides, the config's
    hydra.sweeper.params first (what `python app.py --multirun` runs)."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(config.parent), version_base=None):
        cfg = compose(config_name=config.stem, return_hydra_config=True)
        params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
        items = [f"{k}={v}" for k, v in params.items()] + overrides
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        (batch,) = BasicSweeper.split_arguments(parser.parse_overrides(items), None)
    return batch


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=glob(*)"],
        ["model=glob(*)", "optim=glob(*,exclude=sgd)", "trainer.epochs=1,2"],
        ["model=glob(res*)", "optim.lr=0.1,0.2"],
        [],  # the config's own hydra.sweeper.params alone
        ["optim.lr=0.5"],  # the command line replaces the config's sweep of that key
    ],
)
def test_glob_and_sweeper_params_expand_as_hydra_does(tmp_path: Path, overrides: list[str]) -> None:
    import shutil

    shutil.copytree(TREE.parent, tmp_path, dirs_exist_ok=True)
    config = tmp_path / "experiment.yaml"
    text = config.read_text() + "hydra:\n  sweeper:\n    params:\n      optim.lr: 0.01,0.001\n"
    config.write_text(text)
    combos, _ = expand(overrides, config)
    assert combos == _hydra_basic_sweeper(config, overrides)


def test_sweep_runs_the_configs_sweeper_params(cli, root: Path, tmp_path: Path) -> None:
    config = tmp_path / "s.yaml"
    config.write_text(
        "data: {source: synthetic.regression, n_samples: 256}\nmodel: {hidden: [8]}\n"
        "trainer: {epochs: 1}\nhydra:\n  sweeper:\n    params:\n      optim.lr: 0.01,0.001\n"
    )
    code, out, err = cli("sweep", config, "-o", root, "-f", "json")
    assert code == 0, err
    runs = json.loads(out)["runs"]
    assert sorted(r["optim.lr"] for r in runs) == ["0.001", "0.01"]
    lrs = {runlab.RunRecord(root / r["run_id"]).config["optim"]["lr"] for r in runs}
    assert lrs == {0.01, 0.001}


def test_sweep_errors_before_any_run(cli, root: Path) -> None:
    code, _, err = cli("sweep", QUICK, "trainer.epochs=1,ten", "-o", root)
    assert code == 2 and "trainer.epochs must be an integer" in err
    code, _, err = cli("sweep", QUICK, "optim.lr=interval(0.1,0.2)", "-o", root)
    assert code == 2 and "a grid needs discrete values" in err
    code, _, err = cli("sweep", QUICK, "optim.lr=0.1,0.2", "--launcher", "pbs", "-o", root)
    assert code == 2 and "unknown launcher 'pbs'; use one of local, ray, slurm, htcondor" in err, (
        err
    )
    code, _, err = cli("sweep", "--resume", "nope", "-o", root)
    assert code == 2 and "no sweep 'nope'" in err
    code, _, err = cli("sweep", QUICK, "model=glob(*)", "-o", root)  # was a 47-line traceback
    assert code == 2 and err.count("\n") == 1 and "no config group 'model'" in err, err
    code, _, err = cli("sweep", str(TREE), "model=glob(cnn*)", "-o", root)
    assert code == 2 and "config group 'model' has mlp, resmlp" in err, err
    assert not root.exists() or not any(root.iterdir())


def test_parallel_children_share_the_cores(monkeypatch) -> None:
    import os

    from runlab.sweep.launcher_local import LocalLauncher

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert LocalLauncher(jobs=4)._child_env()["OMP_NUM_THREADS"] == "2"
    assert "OMP_NUM_THREADS" not in LocalLauncher(jobs=1)._child_env()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
    assert LocalLauncher(jobs=4)._child_env()["OMP_NUM_THREADS"] == "3"


@pytest.mark.slow  # ~45 s; the default suite runs Ray through tests/test_ray_cluster.py
def test_ray_launcher_runs_the_grid_on_a_local_ray(cli, root: Path) -> None:
    pytest.importorskip("ray")
    code, out, err = cli(
        "sweep",
        QUICK,
        "optim.lr=0.001,0.003",
        "trainer.epochs=1",
        "--launcher",
        "ray",
        "--jobs",
        "2",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert [r["status"] for r in result["runs"]] == ["finished", "finished"]
    for r in result["runs"]:
        assert runlab.RunRecord(root / r["run_id"]).info["parent"] == result["sweep_id"]
    assert (Path(result["path"]).parent / "logs" / "0.out").exists()
    # a study on Ray: tests/test_ray_cluster.py, on a cluster started with `ray start`


def test_a_grid_checked_together_is_each_combination_composed_alone(tmp_path: Path) -> None:
    """The fast way a sweep checks its grid (Hydra composes the shared part once) against the
    reference: Hydra's whole composition of every combination, interpolations included."""
    from runlab.config.compose import compose, compose_grid
    from runlab.errors import ConfigError
    from runlab.train.checks import load_checked, load_grid

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "data: {source: synthetic.regression, n_samples: 64}\nmodel: {hidden: [4]}\n"
        "trainer: {epochs: 2}\nschedule: {name: cosine, warmup_steps: '${trainer.epochs}'}\n"
        "mine: {lr_copy: '${optim.lr}'}\n"
    )
    combos, _ = expand(
        ["optim.lr=0.1,0.2", "trainer.epochs=1,3", "model.hidden=[4],[8,8]", "+extra=1"], str(cfg)
    )
    together = compose_grid(cfg, combos)
    assert together == [compose(cfg, c) for c in combos]
    assert {(c["mine"]["lr_copy"], c["schedule"]["warmup_steps"]) for c in together} == {
        (0.1, 1), (0.1, 3), (0.2, 1), (0.2, 3)
    }  # fmt: skip
    assert load_grid(cfg, combos) == [load_checked(cfg, c) for c in combos]
    # mapping values are merged into what is there, so each combination starts afresh: the
    # third must not keep the second's min_delta
    merged, _ = expand(
        [
            "trainer.early_stopping={patience:3},{patience:2,min_delta:0.1},{patience:1}",
            "optim.lr=0.1",
        ],
        str(cfg),
    )
    together = compose_grid(cfg, merged)
    assert together == [compose(cfg, c) for c in merged]
    assert "min_delta" not in together[2]["trainer"]["early_stopping"]
    bad = [["trainer.epochs=1"], ["trainer.epochs=ten"]]
    with pytest.raises(ConfigError) as alone:
        load_checked(cfg, bad[1])
    with pytest.raises(ConfigError) as grid:
        load_grid(cfg, bad)
    assert str(grid.value) == str(alone.value)


def test_a_studys_trials_in_one_process_are_each_config_composed_alone(tmp_path: Path) -> None:
    """`runlab tune --in-process` composes the shared part once (ConfigSeries): each trial's
    config against load_checked of it alone, over a run of trials with values, mappings
    (merged, so each trial starts afresh), a key of the user's own (Hydra's whole way), and a
    bad value (the same error)."""
    from runlab.errors import ConfigError
    from runlab.train.checks import ConfigSeries, load_checked

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "data: {source: synthetic.regression, n_samples: 64}\nmodel: {hidden: [4]}\n"
        "trainer: {epochs: 2}\nmine: {lr_copy: '${optim.lr}'}\n"
    )
    fixed = ["trainer.epochs=1", "+tag=x"]
    series = ConfigSeries(cfg, fixed)
    trials = [
        ["optim.lr=0.1", "model.hidden=[8]"],
        ["optim.lr=0.2", "model.hidden=[8,8]"],
        ["optim.lr=0.3", "trainer.early_stopping={patience:2,min_delta:0.1}"],
        ["optim.lr=0.4", "trainer.early_stopping={patience:1}"],
        ["optim.lr=0.5", "+mine.extra=1"],  # a key of the user's own: Hydra's whole way
        ["optim.lr=0.6", "optim.weight_decay=0.01"],
    ]
    for extra in trials:
        assert series.load(extra) == load_checked(cfg, fixed + extra), extra
    with pytest.raises(ConfigError) as alone:
        load_checked(cfg, [*fixed, "trainer.epochs=ten"])
    with pytest.raises(ConfigError) as together:
        series.load(["trainer.epochs=ten"])
    assert str(together.value) == str(alone.value)
