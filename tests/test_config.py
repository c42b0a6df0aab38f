"""Config composition (Hydra compose API) and validation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runlab.config import compose, load_config
from runlab.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
TREE = REPO / "examples" / "configs" / "experiment.yaml"


def test_group_choice_overrides_add_delete_and_interpolation() -> None:
    cfg = compose(TREE, ["model=resmlp", "trainer.epochs=20", "+new.key=1", "~notes"])
    assert cfg["model"]["name"] == "resmlp" and cfg["trainer"]["epochs"] == 20
    assert cfg["new"] == {"key": 1} and "notes" not in cfg
    assert compose(TREE, ["optim.lr=0.5"])["notes"] == "mlp on synthetic regression, lr 0.5"


def test_working_directory_untouched_and_no_hydra_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    load_config(TREE)
    assert Path.cwd() == tmp_path and list(tmp_path.iterdir()) == []


def test_runlab_keys_can_be_overridden_when_the_file_omits_them(tmp_path: Path) -> None:
    path = tmp_path / "min.yaml"
    path.write_text("data: {source: synthetic.regression}\n")
    cfg = load_config(path, ["trainer.epochs=7", "optim.lr=0.1", "task=classification"])
    assert cfg["trainer"]["epochs"] == 7 and cfg["optim"]["lr"] == 0.1
    assert cfg["task"] == "classification" and cfg["trainer"]["batch_size"] == 256  # default


def test_json_and_yml_configs(tmp_path: Path) -> None:
    for name in ("c.json", "c.yml"):
        path = tmp_path / name
        path.write_text(
            json.dumps({"data": {"source": "synthetic.regression"}, "trainer": {"epochs": 2}})
        )
        cfg = load_config(path, ["trainer.epochs=3"])
        assert cfg["trainer"]["epochs"] == 3
    assert not [p for p in os.listdir(tmp_path) if p not in ("c.json", "c.yml")]


def test_user_keys_pass_through_unchecked(tmp_path: Path) -> None:
    path = tmp_path / "u.yaml"
    path.write_text("data: {source: synthetic.regression}\nmy_stuff: {anything: [1, 2]}\n")
    assert load_config(path)["my_stuff"] == {"anything": [1, 2]}


def test_target_blocks_keep_their_kwargs(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "data: {source: synthetic.regression}\nmodel: {_target_: tests.helpers.TinyNet, width: 3}\n"
    )
    assert load_config(path)["model"] == {"_target_": "tests.helpers.TinyNet", "width": 3}


def test_nested_unknown_key_hint() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown key trainer.early_stopping.patients "
        r"\(did you mean 'patience'\?\)",
    ):
        load_config(REPO / "examples" / "quickstart.yaml", ["+trainer.early_stopping.patients=3"])


def test_config_reference_lists_every_key() -> None:
    from runlab.config.compose import known_keys

    text = (REPO / "docs" / "config.md").read_text()
    missing = [k for k in known_keys() if f"`{k}`" not in text]
    assert missing == []


def test_folders_the_defaults_do_not_name_are_not_groups(tmp_path: Path) -> None:
    """A data/ of datasets, the wandb/ that W&B creates, trainer/ and mlflow/ beside the
    config: runlab's own keys still take overrides (they failed as 'unknown override key')."""
    for folder in ("data", "wandb/run-20260101_000000-abc", "trainer", "mlflow/mlruns"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "data" / "prices.npz").write_bytes(b"")
    path = tmp_path / "c.yaml"
    path.write_text("data: {source: synthetic.regression}\ntrainer: {epochs: 1}\n")
    cfg = load_config(
        path,
        [
            "data.n_samples=300",
            "trainer.batch_size=8",
            "wandb.project=p",
            "mlflow.experiment=e",
            "task=classification",
        ],
    )
    assert cfg["data"]["n_samples"] == 300 and cfg["trainer"]["batch_size"] == 8
    assert cfg["wandb"]["project"] == "p" and cfg["mlflow"]["experiment"] == "e"
    assert cfg["task"] == "classification" and cfg["trainer"]["epochs"] == 1


def test_declared_groups_compose_as_hydra_composes_them() -> None:
    """The reference: Hydra's own compose of the same tree and overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    overrides = ["model=resmlp", "optim=sgd", "optim.lr=0.5", "model.blocks=3"]
    with initialize_config_dir(config_dir=str(TREE.parent), version_base=None):
        expected = OmegaConf.to_container(
            hydra_compose(config_name=TREE.stem, overrides=overrides), resolve=True
        )
    assert compose(TREE, overrides) == expected


def test_mandatory_values_must_be_given(cli, tmp_path: Path) -> None:
    """'???' is Hydra's mandatory value: reading it is an error there, and here before a run."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue

    path = tmp_path / "m.yaml"
    path.write_text("data: {source: synthetic.regression}\nexperiment:\n  owner: ???\n")
    with pytest.raises(MissingMandatoryValue):
        OmegaConf.to_container(OmegaConf.load(path), throw_on_missing=True)
    root = tmp_path / "runs"
    code, out, err = cli("run", path, "-o", root)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "experiment.owner is mandatory (???)" in err and not root.exists()
    assert load_config(path, ["experiment.owner=me"])["experiment"] == {"owner": "me"}
