"""Predict with this model bundle (made by ``runlab package``), without runlab.

    python predict.py                      # predict the bundled examples, check the golden output
    python predict.py INPUT [INPUT ...]    # .json (a list of rows), .csv (a header of feature
                                           # names), .npy (no pickles): one JSON line per row

Needs torch and numpy only. The inputs are raw features, in the order of bundle.json's
``feature_names``; they are scaled as in training before the model sees them.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def load() -> tuple[dict[str, Any], Any]:
    """The bundle's facts and its model (the ``torch.export`` program, weights included)."""
    meta = json.loads((HERE / "bundle.json").read_text(encoding="utf-8"))
    program = torch.export.load(str(HERE / meta["formats"]["pt2"])).module()
    return meta, program


def predict(rows: Any, meta: dict[str, Any], program: Any) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    scaler = meta["scaler"]
    if scaler.get("kind", "none") != "none":
        center = np.asarray(scaler["center"], dtype=np.float32)
        scale = np.asarray(scaler["scale"], dtype=np.float32)
        x = ((x - center) / scale).astype(np.float32)
    with torch.no_grad():
        out = program(torch.from_numpy(x)).float()
    if meta.get("squeeze_last") and out.shape[-1] == 1:
        out = out.squeeze(-1)
    return out.numpy()  # type: ignore[no-any-return]


def read_rows(path: Path, names: list[str]) -> np.ndarray:
    if path.suffix == ".npy":
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.float32)
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            table = list(csv.DictReader(fh))
        return np.asarray([[float(row[n]) for n in names] for row in table], dtype=np.float32)
    return np.asarray(json.loads(path.read_text(encoding="utf-8")), dtype=np.float32)


def check_golden(meta: dict[str, Any], program: Any) -> int:
    golden = json.loads((HERE / "examples" / "golden.json").read_text(encoding="utf-8"))
    got = predict(golden["input"], meta, program)
    want = np.asarray(golden["output"], dtype=np.float32)
    if got.shape == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-5):
        print(f"ok: {len(want)} golden examples match ({meta['run_id']})")
        return 0
    worst = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("nan")
    print(f"golden examples differ: shape {got.shape} vs {want.shape}, max |diff| {worst}")
    return 1


def main(argv: list[str]) -> int:
    meta, program = load()
    if not argv:
        return check_golden(meta, program)
    for arg in argv:
        for value in predict(read_rows(Path(arg), meta["feature_names"]), meta, program):
            print(json.dumps(np.asarray(value).tolist()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
