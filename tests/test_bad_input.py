"""Every bad input of issue 3: one line on stderr, exit code 2, no traceback, no run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import arrays

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "examples" / "quickstart.yaml"
TREE = REPO / "examples" / "configs" / "experiment.yaml"
TUNE = str(REPO / "examples" / "tune.yaml")


def npz(tmp_path: Path, **changes: object) -> Path:
    data = arrays()
    data.update(changes)  # type: ignore[arg-type]
    data = {k: v for k, v in data.items() if v is not None}
    np.savez(tmp_path / "d.npz", **data)
    return tmp_path / "d.npz"


def cfg_file(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def expect_error(cli, root: Path, args: list[object], *fragments: str) -> str:
    code, out, err = cli("run", *args, "-o", root)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("runlab: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    assert not root.exists() or not any(p.is_dir() for p in root.iterdir())
    return err


def test_missing_config_file(cli, root: Path, tmp_path: Path) -> None:
    expect_error(cli, root, [tmp_path / "nope.yaml"], "config file", "nope.yaml", "not found")


def test_yaml_syntax_error_names_the_line(cli, root: Path, tmp_path: Path) -> None:
    bad = cfg_file(tmp_path, "data:\n  source: synthetic.regression\ntask: [regression\n")
    expect_error(cli, root, [bad], "c.yaml:4:1: YAML syntax error")


def test_unknown_override_key(cli, root: Path) -> None:
    expect_error(
        cli,
        root,
        [QUICK, "trainer.epoch=3"],
        "unknown override key 'trainer.epoch' (did you mean 'trainer.epochs'?)",
    )


def test_unknown_key_in_a_block_of_the_file(cli, root: Path, tmp_path: Path) -> None:
    bad = cfg_file(tmp_path, "data: {source: synthetic.regression}\noptim: {lr: 0.1, wd: 0.1}\n")
    expect_error(cli, root, [bad], "unknown key optim.wd", "valid keys in optim: name, lr")


def test_wrong_type(cli, root: Path) -> None:
    expect_error(
        cli,
        root,
        [QUICK, "trainer.epochs=ten"],
        "trainer.epochs must be an integer, got 'ten' (str)",
    )
    expect_error(
        cli,
        root,
        [QUICK, "trainer.mixed_precision=fp8"],
        "trainer.mixed_precision must be one of False, 'fp16', 'bf16', got 'fp8'",
    )
    expect_error(cli, root, [QUICK, "task=regresion"], "(did you mean 'regression'?)")


def test_unknown_group_option_lists_the_options(cli, root: Path) -> None:
    expect_error(
        cli,
        root,
        [TREE, "model=resnet"],
        "unknown option 'resnet' for config group 'model'",
        "options: mlp, resmlp",
    )


def test_bad_target(cli, root: Path) -> None:
    expect_error(
        cli,
        root,
        [QUICK, "~model", "+model._target_=tests.helpers.TinyNett"],
        "module 'tests.helpers' has no attribute 'TinyNett' (did you mean 'TinyNet'?)",
    )
    expect_error(
        cli,
        root,
        [QUICK, "~model", "+model._target_=nopkg.models.Net"],
        "module 'nopkg.models' cannot be imported",
    )


def test_missing_data_file(cli, root: Path, tmp_path: Path) -> None:
    expect_error(
        cli,
        root,
        [QUICK, f"data.source={tmp_path}/missing.npz"],
        "data file",
        "missing.npz",
        "not found",
    )


def test_missing_npz_key_names_the_keys_found(cli, root: Path, tmp_path: Path) -> None:
    path = npz(tmp_path, y_val=None)
    expect_error(
        cli,
        root,
        [QUICK, f"data.source={path}"],
        "has no key 'y_val' (found: X_test, X_train, X_val, y_test, y_train)",
    )


def test_x_y_length_mismatch(cli, root: Path, tmp_path: Path) -> None:
    path = npz(tmp_path, y_train=np.zeros(7, dtype=np.float32))
    expect_error(
        cli, root, [QUICK, f"data.source={path}"], "data split 'train': X has 240 rows but y has 7"
    )


def test_feature_count_differs_between_splits(cli, root: Path, tmp_path: Path) -> None:
    path = npz(tmp_path, X_val=np.zeros((80, 4), dtype=np.float32))
    expect_error(
        cli, root, [QUICK, f"data.source={path}"], "data split 'val' has 4 features but train has 5"
    )


def test_empty_split(cli, root: Path, tmp_path: Path) -> None:
    path = npz(tmp_path, X_val=np.zeros((0, 5), np.float32), y_val=np.zeros(0, np.float32))
    expect_error(cli, root, [QUICK, f"data.source={path}"], "data split 'val' is empty")


def test_nan_in_data_names_count_and_column(cli, root: Path, tmp_path: Path) -> None:
    x = arrays()["X_train"].copy()
    x[[3, 7, 9], 2] = np.nan
    path = npz(tmp_path, X_train=x)
    expect_error(
        cli,
        root,
        [QUICK, f"data.source={path}"],
        "data split 'train' has 3 non-finite feature values (3 in column 'x2')",
        "data.allow_nan=true",
    )


def test_nan_allowed_when_asked(cli, root: Path, tmp_path: Path) -> None:
    x = arrays()["X_train"].copy()
    x[[3, 7], 1] = np.nan
    path = npz(tmp_path, X_train=x)
    code, _out, err = cli(
        "run", QUICK, f"data.source={path}", "data.allow_nan=true", "trainer.epochs=1", "-o", root
    )
    assert code == 0, err


def test_resume_of_an_unknown_run(cli, root: Path) -> None:
    root.mkdir()
    expect_error(cli, root, ["--resume", "20991231-nope"], "no run '20991231-nope'")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["data.source=synthetic.regresion"],
            "unknown data source 'synthetic.regresion' (did you mean 'synthetic.regression'?)",
        ),
        (["task=ranking"], "task 'ranking' needs a panel"),
        (["trainer.loss=listnet"], "trainer.loss 'listnet' does not fit task 'regression'"),
        (["--device", "cuda:7"], "--device 'cuda:7'"),
        (["trainer.epochs=[1,"], "cannot parse override"),
        (["epochs"], "override 'epochs' is not key=value"),
        (["~optim"], "cannot delete 'optim' (~optim): the config has no such key"),
    ],
)
def test_other_config_errors(cli, root: Path, args: list[str], fragment: str) -> None:
    expect_error(cli, root, [QUICK, *args], fragment)


def test_missing_data_source(cli, root: Path, tmp_path: Path) -> None:
    bad = cfg_file(tmp_path, "task: regression\nmodel: {name: mlp}\n")
    expect_error(cli, root, [bad], "data.source is missing")


@pytest.mark.parametrize(
    ("changes", "extra", "fragment"),
    [
        # a third axis: neither one output nor k outputs per row
        ({"y_train": np.zeros((240, 2, 2), np.float32)}, [], "targets have shape (240, 2, 2)"),
        # k outputs in train, one in val
        (
            {"y_train": np.zeros((240, 2), np.float32), "y_val": np.zeros((80, 1), np.float32)},
            [],
            "train's are (240, 2)",
        ),
        # a model whose output cannot match the targets: an error, never a broadcast
        (
            {"y_train": np.zeros((240, 1), np.float32), "y_val": np.zeros((80, 1), np.float32)},
            ["model.out_features=3"],
            "the model's output has shape",
        ),
        ({}, ["model.out_features=2"], "check model.out_features"),
    ],
)
def test_target_shapes_that_do_not_fit(
    cli, root: Path, tmp_path: Path, changes: dict[str, object], extra: list[str], fragment: str
) -> None:
    path = npz(tmp_path, **changes)
    expect_error(cli, root, [QUICK, f"data.source={path}", *extra], fragment)


@pytest.mark.parametrize(
    ("loop", "fragment"),
    [
        ("nodots", "unknown loop 'nodots'; use one of supervised, episodic, ppo or an import path"),
        ("tests.helpers:nothing", "has no attribute 'nothing'"),
        ("tests.helpers:loop_without_run", "must be callable as fn(cfg, run)"),
        ("tests.helpers:np", "is not a function (it is module)"),
    ],
)
def test_bad_custom_loop(cli, root: Path, loop: str, fragment: str) -> None:
    expect_error(cli, root, [QUICK, f"loop={loop}"], fragment)


@pytest.mark.parametrize("loop", ["tests.helpers:custom_loop", "tests.helpers.custom_loop"])
def test_both_loop_path_forms_work(cli, root: Path, loop: str) -> None:
    code, _, err = cli("run", QUICK, f"loop={loop}", "trainer.epochs=1", "-o", root)
    assert code == 0, err


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("trainer.epochs=0", "trainer.epochs must be >= 1, got 0"),
        ("trainer.batch_size=0", "trainer.batch_size must be >= 1"),
        ("trainer.log_every=0", "trainer.log_every must be >= 1"),
        ("trainer.accumulate=-1", "trainer.accumulate must be >= 1"),
        ("trainer.grad_clip=0", "trainer.grad_clip must be > 0"),
        ("model.hidden=[16,0]", "model.hidden must be >= 1, got 0"),
        ("model.dropout=1.0", "model.dropout must be < 1"),
        ("optim.lr=-0.1", "optim.lr must be >= 0"),
        ("optim.weight_decay=-1", "optim.weight_decay must be >= 0"),
        ("schedule.step_size=0", "schedule.step_size must be >= 1"),
        ("schedule.factor=1.5", "schedule.factor must be < 1"),
        ("data.val_fraction=1.5", "data.val_fraction must be < 1"),
        ("data.val_fraction=0", "data.val_fraction must be > 0"),
        ("data.test_fraction=0.9", "must leave rows to train on"),
        ("data.n_samples=1", "data.n_samples must be >= 3"),
        ("portfolio.transaction_cost_bps=-5", "portfolio.transaction_cost_bps must be >= 0"),
        ("portfolio.quantile=0", "portfolio.quantile must be > 0"),
        ("portfolio.quantile=0.7", "legs overlap"),
        ("portfolio.leverage_limit=0", "portfolio.leverage_limit must be > 0"),
        ("portfolio.borrowing_cost=inf", "must be a finite number"),
        ("episodic.window=1", "episodic.window must be >= 2"),
        ("checkpoint.every=0", "checkpoint.every must be >= 1"),
        ("trainer.early_stopping.patience=-1", "patience must be >= 0"),
    ],
)
def test_values_that_make_no_sense(cli, root: Path, override: str, fragment: str) -> None:
    """Accepted before, or failing late with a message that named nothing."""
    expect_error(cli, root, [QUICK, override], fragment)


def test_yaml_keys_that_are_not_names(cli, root: Path, tmp_path: Path) -> None:
    # the documented alerts block: YAML 1.1 reads `on` as true
    ok = cfg_file(tmp_path, "data: {source: synthetic.regression}\nalerts:\n  on: [failed]\n")
    from runlab.config import load_config

    assert load_config(ok)["alerts"]["on"] == ["failed"]
    bad = cfg_file(tmp_path, "data: {source: synthetic.regression}\ntrainer:\n  1: 2\n", "b.yaml")
    expect_error(cli, root, [bad], "key 1 in trainer is not a name", "quote it")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", QUICK, "-o", "{file}"], "is a file; give a folder"),
        (["sweep", QUICK, "optim.lr=0.1", "-o", "{file}"], "is a file; give a folder"),
        (["sweep", QUICK, "optim.lr=0.1", "--name", "../x", "-o", "{root}"], "not a path"),
        (["tune", TUNE, "--study-name", "../../x", "-o", "{root}"], "not a path"),
        (["tune", TUNE, "--trials", "0", "-o", "{root}"], "--trials must be at least 1"),
        (["export", "{root}", "-o", "{dir}"], "is a folder; give a file"),
        (["ls", "{missing}"], "does not exist"),
        (["index", "{missing}"], "does not exist"),
    ],
)
def test_other_commands_bad_input(
    cli, root: Path, tmp_path: Path, args: list[str], fragment: str
) -> None:
    (tmp_path / "afile").write_text("x")
    root.mkdir()
    places = {
        "file": str(tmp_path / "afile"),
        "root": str(root),
        "dir": str(tmp_path),
        "missing": str(tmp_path / "nope"),
    }
    code, _, err = cli(*[str(a).format(**places) for a in args])
    assert code == 2 and err.count("\n") == 1 and err.startswith("runlab: error: "), err
    assert fragment in err and "Traceback" not in err, err
    assert list(root.iterdir()) == [] and not (tmp_path / "nope").exists()


def test_a_yaml_alias_bomb_is_refused(cli, root: Path, tmp_path: Path) -> None:
    """Nine lines that expand to 9**9 values: refused in seconds, not expanded by Hydra."""
    lines = ["data: {source: synthetic.regression}", 'a0: &a0 ["lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb = cfg_file(tmp_path, "\n".join(lines) + "\n")
    expect_error(cli, root, [bomb], "expands to more than 1,000,000 values")


@pytest.mark.parametrize(
    "sweep",
    [
        ["optim.lr=range(0,1000000000)"],
        ["optim.lr=range(0,200)", "data.seed=range(0,200)"],
    ],
)
def test_a_sweep_past_the_limit_is_refused(cli, root: Path, sweep: list[str]) -> None:
    code, _, err = cli("sweep", QUICK, *sweep, "-o", root)
    assert code == 2 and err.count("\n") == 1 and "more than 10,000" in err, err
    assert not root.exists()


def test_a_bad_override_on_resume_leaves_the_run_as_it_was(cli, root: Path) -> None:
    """It turned a finished run `failed` (the checkpoint did not load into the new model)."""
    import json

    code, out, err = cli("run", QUICK, "trainer.epochs=1", "-o", root, "-f", "json")
    assert code == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    code, _, err = cli("run", "--resume", run_dir.name, "model.hidden=[999]", "-o", root)
    assert code == 2 and err.count("\n") == 1 and "checkpoint does not fit" in err, err
    assert "state_dict" in err  # what torch said does not fit
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert after == before


def _panel_csv(tmp_path: Path, dates: list[object], name: str = "p.csv") -> Path:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    rows = [
        {"date": d, "asset": f"A{a}", "f0": rng.normal(), "target": rng.normal() * 0.01}
        for d in dates
        for a in range(6)
    ]
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_panel_with_duplicate_or_unparsable_dates_is_refused(
    cli, root: Path, tmp_path: Path
) -> None:
    """Before: a duplicated (date, asset) row silently overwrote the other, and dates that are
    no dates were sorted as text."""
    days = [f"2025-03-{d:02d}" for d in range(1, 21)]
    twice = _panel_csv(tmp_path, [*days, days[4]], "twice.csv")
    panel = [QUICK, f"data.source={twice}", "task=ranking"]
    expect_error(cli, root, panel, "share a (date, asset)")
    odd = _panel_csv(tmp_path, [*days[:-1], "yesterday"], "odd.csv")
    expect_error(
        cli, root, [QUICK, f"data.source={odd}", "task=ranking"], "not dates, first 'yesterday'"
    )


def test_panel_dates_sort_in_time_not_as_text(tmp_path: Path) -> None:
    """Before: '2025-3-10' sorted before '2025-3-9', and period 10 before period 9."""
    from runlab.config import load_config
    from runlab.train.data import load_dataset

    for dates, first_val in (
        ([f"2025-3-{d}" for d in range(1, 21)], "2025-03-13"),
        (list(range(20)), "12"),
    ):
        path = _panel_csv(tmp_path, dates, f"p{len(str(dates[0]))}.csv")
        cfg = load_config(QUICK, [f"data.source={path}", "task=ranking"])
        ds = load_dataset(cfg["data"], "ranking")
        train = ds.dates["train"]
        assert train == sorted(train) and len(train) == 12
        assert ds.dates["val"][0] == first_val
    cfg = load_config(QUICK, [f"data.source={path}", "task=ranking", "data.train_end='9'"])
    assert load_dataset(cfg["data"], "ranking").dates["train"][-1] == "09"
