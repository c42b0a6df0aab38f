"""Predict with this bundle's ``model.onnx`` (made by ``runlab package --formats onnx``),
without runlab or torch: onnxruntime and numpy only.

    python predict_onnx.py                 # predict the bundled examples, check the golden output
    python predict_onnx.py ROWS.json       # a list of rows of raw features: one JSON line each
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def predict(rows: Any, meta: dict[str, Any], session: Any) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    scaler = meta["scaler"]
    if scaler.get("kind", "none") != "none":
        center = np.asarray(scaler["center"], dtype=np.float32)
        scale = np.asarray(scaler["scale"], dtype=np.float32)
        x = ((x - center) / scale).astype(np.float32)
    out = np.asarray(session.run(None, {"x": x})[0], dtype=np.float32)
    if meta.get("squeeze_last") and out.shape[-1] == 1:
        out = out[..., 0]
    return out


def main(argv: list[str]) -> int:
    try:
        import onnxruntime
    except ImportError:
        print("onnxruntime is not installed: pip install onnxruntime")
        return 3
    meta = json.loads((HERE / "bundle.json").read_text(encoding="utf-8"))
    session = onnxruntime.InferenceSession(str(HERE / meta["formats"]["onnx"]))
    if argv:
        for arg in argv:
            rows = json.loads(Path(arg).read_text(encoding="utf-8"))
            for value in predict(rows, meta, session):
                print(json.dumps(np.asarray(value).tolist()))
        return 0
    golden = json.loads((HERE / "examples" / "golden.json").read_text(encoding="utf-8"))
    got = predict(golden["input"], meta, session)
    want = np.asarray(golden["output"], dtype=np.float32)
    if got.shape == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-5):
        print(f"ok: {len(want)} golden examples match with onnxruntime ({meta['run_id']})")
        return 0
    print(f"golden examples differ with onnxruntime: shape {got.shape} vs {want.shape}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
