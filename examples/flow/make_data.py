"""A small regression dataset for examples/flow/flow.yaml: train, val and test splits of 8
features and a target, as the .npz runlab reads (X_train, y_train, X_val, ...)."""

import argparse
from pathlib import Path

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--rows", type=int, default=2000)
args = parser.parse_args()
rng = np.random.default_rng(0)
weights = rng.normal(size=8)
x = rng.normal(size=(args.rows, 8)).astype(np.float32)
y = (x @ weights + 0.5 * rng.normal(size=args.rows)).astype(np.float32)
a, b = int(args.rows * 0.6), int(args.rows * 0.8)
Path(args.out).parent.mkdir(parents=True, exist_ok=True)
np.savez(
    args.out, X_train=x[:a], y_train=y[:a], X_val=x[a:b], y_val=y[a:b], X_test=x[b:], y_test=y[b:]
)
