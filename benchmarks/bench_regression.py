"""No-regression check between two source trees of runlab (a refactor against the commit
before it): the built-in trainer's throughput (issue 3's workloads) and the per-step logging
cost (issue 2's), each measured in a fresh process per tree, the trees alternating, so that
both see the same machine at the same time.

    git worktree add /tmp/before <commit>
    python benchmarks/bench_regression.py --before /tmp/before/src --after src --rounds 5

Prints medians per tree and the ratio after/before; a hand-written PyTorch loop measured in the
same processes shows how noisy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

TRAINER = textwrap.dedent(
    """
    import json, sys, tempfile, time
    from pathlib import Path
    import numpy as np, torch, torch.nn.functional as F
    import runlab
    from runlab.config import load_config
    from runlab.train.data import load_dataset
    from runlab.train.fit import fit
    from runlab.train.models import MLP

    features, hidden, rows, batch = int(sys.argv[1]), json.loads(sys.argv[2]), 200_000, 512
    torch.set_num_threads(torch.get_num_threads())
    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows + 2000, features), dtype=np.float32)
    y = (np.sin(x[:, 0]) + x[:, 1:4].sum(1) * 0.3).astype(np.float32)
    np.savez(tmp / "d.npz", X_train=x[:rows], y_train=y[:rows], X_val=x[rows:], y_val=y[rows:])
    (tmp / "c.yaml").write_text(
        f"data: {{source: {tmp / 'd.npz'}, scaler: none}}\\ntask: regression\\n"
        f"model: {{name: mlp, hidden: {hidden}}}\\n"
        f"trainer: {{epochs: 2, batch_size: {batch}}}\\n"
    )
    cfg = load_config(tmp / "c.yaml")
    data = load_dataset(cfg["data"], "regression")
    with runlab.start_run(config=cfg, root=tmp / "runs", capture_stdout=False, index=False) as run:
        fit(cfg, run, data, torch.device("cpu"), seed=0, show_progress=False)
    ours = float(run.summary["samples_per_sec"])
    xt, yt = torch.from_numpy(x[:rows]), torch.from_numpy(y[:rows])
    model = MLP(features, 1, hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    t0 = time.perf_counter()
    for _ in range(2):
        perm = torch.randperm(rows)
        for i in range((rows + batch - 1) // batch):
            idx = perm[i * batch : (i + 1) * batch]
            loss = F.mse_loss(model(xt[idx]).squeeze(-1), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    hand = 2 * rows / (time.perf_counter() - t0)
    print(json.dumps({"runlab": ours, "hand": hand}))
    """
)

LOGGING = textwrap.dedent(
    """
    import json, tempfile, time
    from pathlib import Path
    import runlab

    steps = 20_000
    rows = [{f"m{k}": 0.001 * (i + k) for k in range(10)} for i in range(steps)]
    tmp = Path(tempfile.mkdtemp())
    with open(tmp / "plain.jsonl", "w") as fh:
        t0 = time.perf_counter()
        for row in rows:
            fh.write(json.dumps(row) + "\\n")
        plain = (time.perf_counter() - t0) / steps * 1e6
    with runlab.start_run(root=tmp / "runs", capture_stdout=False, index=False) as run:
        t0 = time.perf_counter()
        for i, row in enumerate(rows):
            run.log(row, step=i)
        ours = (time.perf_counter() - t0) / steps * 1e6
    print(json.dumps({"runlab": ours, "hand": plain}))
    """
)

CASES = {
    "trainer MLP 64-256-256-1 (samples/s)": (TRAINER, ["64", "[256, 256]"]),
    "trainer tiny MLP 16-32-1 (samples/s)": (TRAINER, ["16", "[32]"]),
    "run.log, 10 scalars (µs/step)": (LOGGING, []),
}


def measure(src: str, code: str, args: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            check=True,
        )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the src folder of the earlier tree")
    parser.add_argument("--after", default="src", help="the src folder of the later tree")
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args()
    trees = {"before": str(Path(opts.before).resolve()), "after": str(Path(opts.after).resolve())}
    print(
        "| measure | before (median) | after (median) | after / before "
        "| hand loop or plain append, before / after | per-process ratio to it, before / after |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (code, args) in CASES.items():
        got: dict[str, dict[str, list[float]]] = {t: {"runlab": [], "hand": []} for t in trees}
        for i in range(opts.rounds):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))  # alternate the first
            for tree in order:
                result = measure(trees[tree], code, args)
                got[tree]["runlab"].append(result["runlab"])
                got[tree]["hand"].append(result["hand"])
        b = statistics.median(got["before"]["runlab"])
        a = statistics.median(got["after"]["runlab"])
        hb = statistics.median(got["before"]["hand"])
        ha = statistics.median(got["after"]["hand"])
        rb = statistics.median(r / h for r, h in zip(*got["before"].values(), strict=True))
        ra = statistics.median(r / h for r, h in zip(*got["after"].values(), strict=True))
        print(
            f"| {name} | {b:,.1f} | {a:,.1f} | {a / b:.3f} | {hb:,.1f} / {ha:,.1f} "
            f"| {rb:.3f} / {ra:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
