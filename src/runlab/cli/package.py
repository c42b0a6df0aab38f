"""``runlab package RUN -o DIR``: a run's model as a bundle that runs without runlab, and
``runlab package verify DIR``: prove it (manifest, no pickles, predict.py without runlab)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from runlab.errors import ConfigError
from runlab.tracking.roots import ROOT_HELP


def package(
    run: str = typer.Argument(
        ..., help="Run id, prefix, name or path; or `verify` to check the bundle DIR."
    ),
    folder: Path | None = typer.Argument(None, help="With `verify`: the bundle.", hidden=True),
    output: Path | None = typer.Option(None, "--output", "-o", help="The bundle's directory."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best, last or an epoch."),
    formats: str = typer.Option("pt2", "--formats", help="pt2, onnx (comma-separated)."),
    archive: bool = typer.Option(False, "--archive", help="Also write DIR.tar.gz."),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP),
) -> None:
    """Package a run's model: torch.export program, safetensors weights, predict.py (torch and
    numpy only), golden examples, config, metrics, provenance, a model card and a SHA-256
    manifest. `runlab package verify DIR` checks one in an interpreter without runlab."""
    if run == "verify":
        _verify(folder, output)
        return
    if folder is not None:
        raise ConfigError(f"unexpected argument {folder}: give the bundle's directory as -o DIR")
    if output is None:
        raise ConfigError("runlab package RUN needs -o DIR, the bundle's directory")
    from runlab.cli.runs import _root_arg
    from runlab.tracking.resolve import resolve_run
    from runlab.train.bundle_spec import check_target

    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    check_target(output, chosen)
    record = resolve_run(run, _root_arg(root))
    _require()
    from runlab.train.bundle import package as write_bundle
    from runlab.train.load import snapshot

    which, note = snapshot(record.path, record.id, checkpoint, "--checkpoint", "packaging")
    if note:
        sys.stderr.write(f"runlab: note: {note}\n")
    meta = write_bundle(record, output, which, chosen, archive)
    sys.stdout.write(f"{output}\n")
    for fmt, why in meta["skipped"].items():
        sys.stderr.write(f"runlab: warning: {fmt} not written: {why}\n")
    if meta.get("archive"):
        sys.stdout.write(f"{meta['archive']}\n")


def _require() -> None:
    from runlab._imports import require

    require("torch", "torch", "runlab package")
    require("safetensors", "package", "runlab package")


def _verify(folder: Path | None, output: Path | None) -> None:
    target = folder or output
    if target is None:
        raise ConfigError("runlab package verify DIR: give the bundle's directory")
    if not target.is_dir():
        raise ConfigError(f"{target} is not a directory: give a bundle runlab package wrote")
    if not (target / "MANIFEST.json").is_file():
        raise ConfigError(f"{target} is not a runlab bundle (no MANIFEST.json)")
    _require()
    from runlab.train.bundle import verify

    problems = verify(target)
    for problem in problems:
        sys.stdout.write(f"FAIL {problem}\n")
    if problems:
        raise typer.Exit(1)
    sys.stdout.write(f"ok: {target} (manifest, no pickles, predict.py without runlab)\n")


def register(app: typer.Typer) -> None:
    app.command("package")(package)
