"""``runlab package``: a run's model as a directory that loads and predicts without runlab, and
``runlab package verify``, which proves it in an interpreter where runlab cannot be imported.

A bundle holds the model as a ``torch.export`` program (``model.pt2``, weights inside: torch
alone runs it) and its weights as safetensors (``model.safetensors``, for code that builds the
class itself); ``bundle.json`` (feature names, the input scaler, the task, which formats were
written and why any was skipped); ``predict.py`` (torch and numpy only); golden examples
(``examples/golden.json``: inputs and the run's own model's outputs); the run's config,
metrics, backtest summary, data description and provenance; a model card (``README.md`` with
Hugging Face front matter); and ``MANIFEST.json``, the SHA-256 of every other file. No file
holds a pickle: the ``.pt2`` archive's pickled sample inputs are left out.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runlab.errors import ConfigError, RunlabError
from runlab.train.bundle_spec import check_target

GOLDEN_ROWS = 8
PREDICT = Path(__file__).with_name("bundle_predict.py")
PREDICT_ONNX = Path(__file__).with_name("bundle_predict_onnx.py")
_PICKLE_PROTOCOLS = {bytes([0x80, p]) for p in range(2, 6)}


def package(
    run: Any,
    out: Path,
    which: str = "best",
    formats: tuple[str, ...] = ("pt2",),
    archive: bool = False,
) -> dict[str, Any]:
    """Write ``run``'s model (a RunRecord) as a bundle at ``out`` (which must not exist, or be
    an empty directory). Written beside it and renamed into place: a failure leaves nothing.
    Returns bundle.json's facts (with ``archive`` the tarball's path)."""
    from runlab.train.load import load_model

    check_target(out, formats)
    loaded = load_model(run.path, which)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        meta = _write(work, run, loaded, which, formats)
        _readable(work)
        if out.exists():
            out.rmdir()
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if archive:
        meta["archive"] = shutil.make_archive(str(out), "gztar", out.parent, out.name)
    return meta


def _readable(folder: Path) -> None:
    """The bundle's modes as any new file's (mkdtemp made the folder 0700)."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _write(
    work: Path, run: Any, loaded: Any, which: str, formats: tuple[str, ...]
) -> dict[str, Any]:
    model = loaded.model.cpu().eval()
    example = _example_input(loaded)
    squeeze = loaded.config.get("task") != "classification" and loaded.target_shape in (None, ())
    meta: dict[str, Any] = {
        "runlab_bundle": 1,
        "run_id": run.id,
        "checkpoint": which,
        "task": loaded.config.get("task"),
        "feature_names": list(loaded.feature_names or []),
        "scaler": _plain(loaded.scaler),
        "target_shape": list(loaded.target_shape) if loaded.target_shape is not None else None,
        "squeeze_last": squeeze,
        "formats": {},
        "skipped": {},
    }
    from safetensors.torch import save_model

    save_model(model, str(work / "model.safetensors"), metadata={"run_id": run.id})
    scaled = torch.from_numpy(_scale(loaded.scaler, example))
    with torch.no_grad():
        golden = model(scaled).float()
    if squeeze and golden.shape[-1] == 1:
        golden = golden.squeeze(-1)
    for fmt in formats:
        try:
            meta["formats"][fmt] = _EXPORT[fmt](model, scaled, work)
        except Exception as err:  # a model torch.export cannot trace still packages
            meta["skipped"][fmt] = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
    (work / "examples").mkdir()
    golden_doc = {"input": example.tolist(), "output": golden.numpy().tolist()}
    (work / "examples" / "golden.json").write_text(json.dumps(golden_doc) + "\n")
    if "pt2" in meta["formats"]:
        shutil.copy(PREDICT, work / "predict.py")
    if "onnx" in meta["formats"]:
        shutil.copy(PREDICT_ONNX, work / "predict_onnx.py")
    _copy_run_files(work, run)
    _json(work / "bundle.json", meta)
    (work / "README.md").write_text(_card(run, meta), encoding="utf-8")
    _json(work / "MANIFEST.json", {"sha256": _hashes(work)})
    return meta


def _example_input(loaded: Any) -> np.ndarray:
    """GOLDEN_ROWS raw rows, deterministic: the training scaler's centre plus its scale times
    normal noise (so the scaled rows look like training data), or noise with no scaler."""
    width = len(loaded.feature_names or []) or len(loaded.scaler.get("center") or [])
    if not width:
        raise RunlabError("cannot tell the model's input width (no feature names, no scaler)")
    z = np.random.default_rng(0).normal(size=(GOLDEN_ROWS, width)).astype(np.float32)
    if loaded.scaler.get("kind", "none") == "none":
        return z
    center = np.asarray(loaded.scaler["center"], dtype=np.float32)
    return (center + z * np.asarray(loaded.scaler["scale"], dtype=np.float32)).astype(np.float32)


def _scale(scaler: dict[str, Any], x: np.ndarray) -> np.ndarray:
    from runlab.train.data import apply_scaler

    return apply_scaler(scaler, x)


def _export_pt2(model: torch.nn.Module, example: torch.Tensor, work: Path) -> str:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    _without_pickles(buffer.getvalue(), work / "model.pt2")
    return "model.pt2"


def _without_pickles(archive: bytes, path: Path) -> None:
    """The .pt2 archive minus its pickled sample inputs (torch.save of the example): an empty
    member loads as no example inputs."""
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info, b"" if "/sample_inputs/" in info.filename else data)


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, work: Path) -> str:
    torch.onnx.export(
        model,
        (example,),
        str(work / "model.onnx"),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        dynamo=False,
    )
    return "model.onnx"


_EXPORT = {"pt2": _export_pt2, "onnx": _export_onnx}


def _copy_run_files(work: Path, run: Any) -> None:
    for name in ("config.yaml", "metrics.json"):
        if (run.path / name).is_file():
            shutil.copy(run.path / name, work / name)
    backtest = run.path / "artifacts" / "backtest" / "test" / "metrics.json"
    if backtest.is_file():
        shutil.copy(backtest, work / "backtest.json")
    info = run.info
    _json(work / "data.json", info.get("data") or {})
    keep = ("id", "name", "created", "ended", "host", "command", "git", "versions", "seed")
    _json(work / "provenance.json", {k: info.get(k) for k in keep if k in info})


def _card(run: Any, meta: dict[str, Any]) -> str:
    """A model card with the front matter Hugging Face reads."""
    metrics = run.metrics if isinstance(run.metrics, dict) else {}
    test = metrics.get("test")
    test = test if isinstance(test, dict) else {}
    shown = {f"test_{k}": v for k, v in test.items() if isinstance(v, (int, float))}
    shown.update({k: v for k, v in metrics.items() if k in ("val_loss", "train_loss")})
    backtest = run.path / "artifacts" / "backtest" / "test" / "metrics.json"
    try:
        trading = json.loads(backtest.read_text()) if backtest.is_file() else {}
    except (OSError, ValueError):  # a damaged backtest summary: the card goes without it
        trading = {}
    trading = trading if isinstance(trading, dict) else {}
    lines = [
        "---",
        "library_name: pytorch",
        f"tags: [runlab, {meta['task'] or 'model'}{', trading' if trading else ''}]",
        "metrics:",
        *[f"  - {k}" for k in sorted(shown)],
        "---",
        "",
        f"# {run.name} ({run.id})",
        "",
        "## Intended use",
        "",
        f"A {meta['task'] or ''} model trained by runlab from `config.yaml`. It takes "
        f"{len(meta['feature_names'])} raw features in this order: "
        f"{', '.join(meta['feature_names']) or '(unnamed)'}; `predict.py` scales them as in "
        "training. Research use: check it on your own data before relying on it.",
        "",
        "## Data",
        "",
        "See `data.json` (columns, splits and sizes as the run recorded them) and "
        "`provenance.json` (commit, versions, seed).",
        "",
        "## Metrics",
        "",
        *[f"- {k}: {v:.6g}" for k, v in sorted(shown.items())],
    ]
    if trading:
        lines += ["", "## Trading (test split backtest, costs as configured)", ""]
        lines += [f"- {k}: {v}" for k, v in sorted(trading.items()) if isinstance(v, float)]
    lines += [
        "",
        "## Limitations",
        "",
        "Metrics are in-sample to this run's splits; a model of market data degrades as the "
        "market changes. Formats skipped: "
        + (", ".join(f"{k} ({v})" for k, v in meta["skipped"].items()) or "none")
        + ".",
        "",
        "## Files",
        "",
        "`python predict.py` checks the golden examples; `MANIFEST.json` has the SHA-256 of "
        "every file.",
        "",
    ]
    return "\n".join(lines)


def _json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "MANIFEST.json"
    }


# ---------------------------------------------------------------------------- verify
def verify(folder: Path) -> list[str]:
    """The problems of a bundle (empty: it is sound): the manifest's hashes, any pickle, and
    ``predict.py`` on the golden examples in ``python -I`` with runlab made unimportable."""
    if not (folder / "MANIFEST.json").is_file():
        raise ConfigError(f"{folder} is not a runlab bundle (no MANIFEST.json)")
    problems: list[str] = []
    listed = json.loads((folder / "MANIFEST.json").read_text()).get("sha256") or {}
    actual = _hashes(folder)
    for name in sorted(set(listed) | set(actual)):
        if name not in actual:
            problems.append(f"{name}: in the manifest, missing")
        elif name not in listed:
            problems.append(f"{name}: not in the manifest")
        elif listed[name] != actual[name]:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    problems += [f"{name}: holds a pickle" for name in sorted(actual) if _pickled(folder / name)]
    if (folder / "predict.py").is_file():
        problems += _run_predict(folder, "predict.py")
    else:
        problems.append("predict.py: missing (no model.pt2: see bundle.json's skipped)")
    if (folder / "model.onnx").is_file():
        problems += _run_predict(folder, "predict_onnx.py")
    return problems


def _pickled(path: Path) -> bool:
    data = path.read_bytes()
    if path.suffix in (".pkl", ".pickle", ".pt", ".pth"):
        return True
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                inner = z.read(name)
                if name.endswith(".pkl") or inner[:2] in _PICKLE_PROTOCOLS:
                    return True
                if inner[:2] == b"PK" and zipfile.is_zipfile(io.BytesIO(inner)):
                    return True  # a torch.save archive inside
        return False
    return data[:2] in _PICKLE_PROTOCOLS


def _run_predict(folder: Path, script: str) -> list[str]:
    if not (folder / script).is_file():
        return [f"{script}: missing"]
    code = (
        f"import runpy, sys; sys.modules['runlab'] = None; sys.argv = ['{script}']; "
        f"runpy.run_path('{script}', run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode == 0:
        return []
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
    return [f"{script} (python -I, without runlab) exited {proc.returncode}: {tail[0]}"]
