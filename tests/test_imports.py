"""`import runlab` and the CLI's start stay light (STYLE.md)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "wandb", "mlflow", "ray", "fastapi", "pandas", "numpy", "optuna"]


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_runlab_imports_nothing_heavy() -> None:
    assert _loaded_after("import runlab") == []


def test_cli_help_and_ls_import_nothing_heavy() -> None:
    code = (
        "import sys\nfrom runlab.cli.main import main\n"
        "for argv in (['--help'], ['ls', '/nonexistent-root']):\n"
        "    try: main(argv)\n"
        "    except SystemExit: pass\n"
    )
    assert _loaded_after(code) == []


def test_help_leaves_markdown_and_traceback_unloaded_but_real() -> None:
    """`runlab --help` prints what Typer prints when it loads its help module itself, without
    loading rich.markdown or rich.traceback; once it has, those import as the real modules and
    Typer's names for them build real objects."""
    probe = (
        "import sys, io, contextlib\nfrom runlab.cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "print(repr(out.getvalue()))\n"
        "print(sorted(m for m in ('rich.markdown', 'rich.traceback') if m in sys.modules))\n"
        "import rich.markdown, rich.traceback, typer.rich_utils as ru\n"
        "print(type(ru.Markdown('*x*')) is rich.markdown.Markdown)\n"
        "try: 1 / 0\n"
        "except ZeroDivisionError as e:\n"
        "    tb = ru.Traceback.from_exception(type(e), e, e.__traceback__)\n"
        "print(isinstance(tb, rich.traceback.Traceback), rich.markdown.Markdown.__module__)\n"
    )
    reference = (
        "import io, contextlib, typer.rich_utils\nfrom runlab.cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "print(repr(out.getvalue()))\n"
    )
    run = [sys.executable, "-c"]
    env = {"COLUMNS": "100", "PATH": "/usr/bin:/bin", "TERM": "dumb"}
    ours = subprocess.run([*run, probe], capture_output=True, text=True, env=env, timeout=60)
    theirs = subprocess.run([*run, reference], capture_output=True, text=True, env=env, timeout=60)
    lines = ours.stdout.splitlines()
    assert ours.returncode == 0, ours.stderr
    assert lines[0] == theirs.stdout.splitlines()[0] and "Commands" in lines[0]
    assert lines[1:] == ["[]", "True", "True rich.markdown"]
