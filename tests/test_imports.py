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
