"""The bad-input table: every command, hundreds of cases, each one line on stderr that starts
``runlab: error:`` and names what is wrong, exit code 2, no traceback, nothing left behind
(no run directory, no file, the runs root byte for byte as it was).

Two parts: the config keys, generated from the schema (every bounded number past its bound,
every number given text, every float NaN, every choice and switch given something else), for
``run`` (and ``check``, marked slow: the same validation); and the commands' own arguments
and options, written by hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from pathlib import Path
from typing import Any

import pytest

import runlab
from runlab.config.schema import RunlabConfig

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "examples" / "quickstart.yaml")
TUNE = str(REPO / "examples" / "tune.yaml")
COMMANDS = [
    *("run", "check", "ls", "show", "index", "backtest", "report", "sweep", "tune"),
    *("status", "watch", "logs", "stop", "compare", "diff", "export", "sync", "ui"),
]


def _fields(cls: type, prefix: str = "") -> typing.Iterator[tuple[str, Any, dict[str, Any]]]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint, key = hints[f.name], prefix + f.name
        if dataclasses.is_dataclass(hint):
            yield from _fields(hint, key + ".")  # type: ignore[arg-type]
        else:
            yield key, hint, dict(f.metadata)


def _schema_cases() -> list[tuple[str, str]]:
    """(override, the key the message must name) for every key of the schema."""
    cases = []
    for key, hint, bounds in _fields(RunlabConfig):
        kinds = {a for a in (typing.get_args(hint) or (hint,)) if a is not type(None)}
        literal = typing.get_origin(hint) is typing.Literal or any(
            typing.get_origin(k) is typing.Literal for k in kinds
        )
        if literal:
            cases.append((f"{key}=not_a_choice", key))
        if kinds & {int, float}:
            if not any(typing.get_origin(k) is list for k in kinds):
                cases.append((f"{key}=abc", key))
            if float in kinds:
                cases.append((f"{key}=nan", key))
            for bound, value in bounds.items():
                step = 0.5 if float in kinds else 1
                bad = {"ge": value - step, "gt": value, "lt": value, "le": value + step}[bound]
                cases.append((f"{key}={bad if float in kinds else int(bad)}", key))
        if kinds == {bool}:
            cases.append((f"{key}=maybe", key))
    return cases


SCHEMA = _schema_cases()

# (command line, a fragment the one line must contain); {placeholders} are filled per test
HAND: list[tuple[str, str]] = [
    *[(f"{c} --bogus", "No such option: --bogus") for c in COMMANDS],
    *[
        (f"{c} -f nope", "'nope' is not one of")
        for c in ("ls", "report", "status", "compare", "show alpha", "diff alpha beta")
    ],
    ("run {quick} -f nope", "'nope' is not one of"),
    ("check {quick} -f nope", "'nope' is not one of"),
    ("sweep {quick} a=1 -f nope", "'nope' is not one of"),
    ("tune {tune} -f nope", "'nope' is not one of"),
    ("backtest alpha -f nope", "'nope' is not one of"),
    ("export -f nope", "nope"),
    # required arguments
    ("show", "Missing argument"),
    ("backtest", "Missing argument"),
    ("logs", "Missing argument"),
    ("stop", "Missing argument"),
    ("check", "Missing argument"),
    ("tune", "Missing argument"),
    ("diff", "Missing argument"),
    ("diff alpha", "Missing argument"),
    ("run", "missing"),
    ("sweep", "missing"),
    ("watch", "watch"),
    # runs that are not there
    *[
        (line, "nope")
        for line in (
            "show nope",
            "backtest nope",
            "logs nope",
            "stop nope",
            "compare nope",
            "compare alpha nope",
            "diff nope alpha",
            "diff alpha nope",
            "watch nope --once",
            "sync nope --sink tensorboard",
            "run --resume nope",
            "run {quick} --baseline nope",
            "check {quick} --baseline nope",
            "compare alpha -b nope",
            "watch --sweep nope --once",
            "watch --study nope --once",
            "sweep --resume nope",
        )
    ],
    # roots that are files or missing
    *[
        (f"{c} {{file}}", "afile")
        for c in (
            "ls",
            "index",
            "status",
            "report",
            "export",
            "sync --sink tensorboard",
            "ui",
            "compare -w 'a==1' -r",
        )
    ],
    *[(f"{c} {{missing}}", "nope") for c in ("ls", "index", "status", "report", "export", "ui")],
    ("show alpha --root {file}", "afile"),
    ("logs alpha --root {file}", "afile"),
    ("stop alpha --root {file}", "afile"),
    ("run {quick} -o {file}", "is a file; give a folder"),
    ("sweep {quick} optim.lr=0.1,0.2 -o {file}", "is a file; give a folder"),
    ("tune {tune} -o {file}", "is a file; give a folder"),
    ("export -o {sandbox}", "is a folder; give a file"),
    ("export -f parquet", "--format parquet writes a file"),
    # configs that are not there or not configs
    ("run {missing}", "nope"),
    ("check {missing}", "nope"),
    ("sweep {missing} a=1,2", "nope"),
    ("tune {missing}", "nope"),
    ("run {sandbox}", "sandbox"),
    ("check {badyaml}", "bad.yaml"),
    ("run {badyaml}", "bad.yaml"),
    ("run {listyaml}", "list.yaml"),
    ("check {emptyyaml}", "data.source"),
    # expressions
    *[
        (f"{c} -w '{e}'", fragment)
        for c in ("ls", "status", "report", "export", "compare")
        for e, fragment in (
            ("status ==", "expected a value"),
            ("((((", "expected"),
            ("val.loss >", "expected a value"),
            ("status = 'x'", "="),
            ("config.db.password == 'x'", "secret"),
        )
    ],
    ("ls -s 'config.db.password'", "secret"),
    ("ls -s ''", "sort"),
    ("ls -w '" + "(" * 200 + "1" + ")" * 200 + "'", "nests deeper than 64"),
    # numbers that make no sense
    ("ls -n -1", "--limit"),
    ("ls -n x", "'x' is not a valid int"),
    ("status -n -1", "--recent"),
    ("logs alpha -n -1", "--tail"),
    ("logs alpha -n x", "'x' is not a valid int"),
    ("watch alpha --interval 0 --once", "--interval"),
    ("watch alpha --interval -1 --once", "--interval"),
    ("watch alpha --interval nan --once", "--interval"),
    ("ui --port 0", "--port"),
    ("ui --port 70000", "--port"),
    ("ui --port x", "'x' is not a valid int"),
    ("ui --token short", "--token: use at least 16 characters"),
    ("ui --host no.such.host.invalid", "cannot listen"),
    ("sweep {quick} optim.lr=0.1,0.2 -j 0", "--jobs"),
    ("sweep {quick} optim.lr=0.1,0.2 --direction sideways", "--direction"),
    ("sweep {quick} optim.lr=0.1,0.2 --launcher bogus", "launcher"),
    (
        "sweep {quick} optim.lr=0.1,0.2 --launcher ray --launcher-opt cpus_per_trial=0",
        "launcher.cpus_per_trial",
    ),
    (
        "sweep {quick} optim.lr=0.1,0.2 --launcher ray --launcher-opt gpus_per_trial=-1",
        "launcher.gpus_per_trial",
    ),
    (
        "sweep {quick} optim.lr=0.1,0.2 --launcher ray --launcher-opt adress=auto",
        "did you mean 'address'",
    ),
    ("sweep {quick} optim.lr=0.1,0.2 --launcher-opt address", "key=value"),
    ("sweep {quick} optim.lr=0.1,0.2 +launcher.name=slurmm", "unknown launcher 'slurmm'"),
    ("sweep {quick} optim.lr=0.1,0.2 --name ../x", "not a path"),
    ("sweep {quick} optim.lr=0.1,0.2 trainer.epochs=0", "trainer.epochs"),
    ("sweep {quick} optim.lr=0.1,-1", "optim.lr"),
    ("sweep --resume x {quick} a=1", "give no config or overrides"),
    ("sweep --resume x {quick}", "give no config or overrides"),
    ("tune {tune} -n 0", "--trials must be at least 1"),
    ("tune {tune} -n -3", "--trials"),
    ("tune {tune} -j 0", "--jobs"),
    ("tune {tune} --timeout soon", "--timeout"),
    ("tune {tune} --timeout -5m", "--timeout"),
    ("tune {tune} --sampler bogus", "sampler"),
    ("tune {tune} --pruner bogus", "pruner"),
    ("tune {tune} --direction sideways", "direction"),
    ("tune {tune} --launcher bogus", "launcher"),
    ("tune {tune} --storage bogus://x", "storage"),
    ("tune {tune} --study-name ../../x", "not a path"),
    ("tune {tune} --seed x", "'x' is not a valid int"),
    ("tune {tune} --objective val.loss --direction minimize --direction maximize", "direction"),
    ("tune {tune} trainer.epochs=0", "trainer.epochs"),
    ("tune {tune} optim.lr='tag(log, interval(0, 1))'", "log"),
    ("tune {tune} optim.lr='interval(1, 0)'", "interval"),
    # backtest flags
    ("backtest alpha --split bogus", "--split"),
    ("backtest alpha --quantile 0", "--quantile"),
    ("backtest alpha --quantile 0.7", "--quantile"),
    ("backtest alpha --quantile nan", "--quantile"),
    ("backtest alpha --transaction-cost-bps -1", "--transaction-cost-bps"),
    ("backtest alpha --transaction-cost-bps nan", "--transaction-cost-bps"),
    ("backtest alpha --leverage-limit 0", "--leverage-limit"),
    ("backtest alpha --borrowing-cost nan", "--borrowing-cost"),
    ("backtest alpha --borrowing-cost -1", "--borrowing-cost"),
    ("backtest alpha --method bogus", "--method"),
    ("backtest alpha --data {missing}", "is not a file"),
    # sync and sinks
    ("sync --sink bogus", "unknown sink 'bogus'"),
    ("sync --sink tensorbord", "did you mean 'tensorboard'"),
    ("sync --sink mlflow --set mlflow", "expected SINK.KEY=VALUE"),
    ("sync --sink mlflow --set mlflow.nope=1", "mlflow.nope"),
    ("sync --sink mlflow --set wandb.mode=offline", "wandb"),
    ("sync", "--sink"),
    ("run {quick} --sink bogus", "unknown sink 'bogus'"),
    ("run {quick} sinks=[mlflow] +mlflow.uri=x", "unknown key mlflow.uri"),
    ("run {quick} sinks=[tests.sink_helpers:Nope]", "has no attribute 'Nope'"),
    ("run {quick} sinks=[runlab.errors:RunlabError]", "not a subclass"),
    # run and check options
    ("run {quick} --device cuda:7", "--device 'cuda:7'"),
    ("run {quick} --device tpu", "--device"),
    ("check {quick} --device tpu", "--device"),
    ("run {quick} --seed x", "'x' is not a valid int"),
    ("check {quick} --seed x", "'x' is not a valid int"),
    ("run {quick} --resume alpha", "has no checkpoints/last.pt"),
    ("run {quick} trainer.epochs=[1,", "cannot parse override"),
    ("run {quick} epochs", "not key=value"),
    ("run {quick} ~optim", "cannot delete 'optim'"),
    ("run {quick} nope.key=1", "nope"),
    ("run {quick} +trainer.epochs=3", "trainer.epochs"),
    ("run {quick} model=nope", "model"),
    ("run {quick} task=ranking", "needs a panel"),
    ("run {quick} task=bogus", "task"),
    ("run {quick} loop=bogus", "loop"),
    ("run {quick} loop=nope.mod:fn", "nope.mod"),
    ("run {quick} data.source=synthetic.regresion", "unknown data source 'synthetic.regresion'"),
    ("run {quick} data.source={missing}", "nope"),
    ("run {quick} trainer.loss=listnet", "does not fit task"),
    ("run {quick} trainer.monitor=val.nope", "val.nope"),
    ("run {quick} evaluate=[bogus]", "bogus"),
    ("run {quick} 'gates=[{{require: \"val.loss <\", at_epoch: 1}}]'", "gates"),
    ("run {quick} 'gates=[{{require: \"val.loss < 1\"}}]'", "gates"),
    ("run {quick} alerts.webhook=ftp://x", "alerts.webhook"),
    ("run {quick} +model._target_=nope.Model", "nope"),
    ("run {quick} +optim._target_=torch.optim.Nope", "Nope"),
    ("check {quick} trainer.epochs=0", "trainer.epochs"),
    ("check {quick} task=bogus", "task"),
    ("check {quick} data.source=synthetic.regresion", "unknown data source 'synthetic.regresion'"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A runs root with two ended runs (alpha, beta), and files to point commands at."""
    base = tmp_path_factory.mktemp("table")
    root = base / "runs"
    for name, loss in (("alpha", 0.5), ("beta", 0.4)):
        with runlab.start_run({"lr": 0.1}, root=root, name=name) as run:
            run.log_epoch(0, {"val": {"loss": loss}})
    sandbox = base / "sandbox"
    sandbox.mkdir()
    (sandbox / "afile").write_text("x")
    (sandbox / "bad.yaml").write_text("data: [unclosed\n")
    (sandbox / "list.yaml").write_text("- 1\n- 2\n")
    (sandbox / "empty.yaml").write_text("")
    return {
        "root": str(root),
        "sandbox": str(sandbox),
        "file": str(sandbox / "afile"),
        "missing": str(sandbox / "nope"),
        "badyaml": str(sandbox / "bad.yaml"),
        "listyaml": str(sandbox / "list.yaml"),
        "emptyyaml": str(sandbox / "empty.yaml"),
        "quick": QUICK,
        "tune": TUNE,
    }


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes (the index is a cache: left out)."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith("index.db")
    } | {str(p.relative_to(folder)) + "/": "" for p in folder.rglob("*") if p.is_dir()}


def _split(line: str) -> list[str]:
    import shlex

    return shlex.split(line)


def _check(cli: Any, world: dict[str, str], args: list[str], fragment: str) -> None:
    root, sandbox = Path(world["root"]), Path(world["sandbox"])
    before = (_snapshot(root), _snapshot(sandbox))
    code, out, err = cli(*[a.format(**world) for a in args])
    assert code == 2, (args, code, out, err)
    assert err.count("\n") == 1 and err.startswith("runlab: error: "), err
    assert "Traceback" not in err
    assert fragment.format(**world) in err, err
    assert (_snapshot(root), _snapshot(sandbox)) == before, "something was left behind"


@pytest.fixture(autouse=True)
def _runs_root(world: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command's default root is the world's (commands that take one may override)."""
    monkeypatch.setenv("RUNLAB_ROOT", world["root"])


@pytest.mark.parametrize("command", ["run", pytest.param("check", marks=pytest.mark.slow)])
@pytest.mark.parametrize(("override", "key"), SCHEMA, ids=[c[0] for c in SCHEMA])
def test_every_config_key_refuses_what_makes_no_sense(
    cli: Any, world: dict[str, str], command: str, override: str, key: str
) -> None:
    _check(cli, world, [command, "{quick}", override], key)


@pytest.mark.parametrize(("line", "fragment"), HAND, ids=[c[0] for c in HAND])
def test_every_command_refuses_bad_arguments(
    cli: Any, world: dict[str, str], line: str, fragment: str
) -> None:
    _check(cli, world, _split(line), fragment)


def test_the_table_covers_every_command_and_300_cases() -> None:
    covered = {_split(line)[0] for line, _ in HAND}
    assert covered == set(COMMANDS)
    assert len(SCHEMA) + len(HAND) >= 300  # `run` alone; `check` doubles SCHEMA (slow)
