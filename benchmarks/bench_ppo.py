"""PPO steps per second: Stable-Baselines3's PPO on runlab.rl.PortfolioEnv alone, the same with
runlab.integrations.sb3.RunlabCallback recording into a run, and runlab's `loop: ppo` cost per
step measured the same way (one rollout of 256 steps, 4 PPO epochs, batch 64, 8,192 steps,
median of 3); and the split of one run's time between the environment and the learner.

    python benchmarks/bench_ppo.py [--steps 8192] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np


def make_env():
    from runlab.rl.env import PortfolioEnv

    rng = np.random.default_rng(0)
    returns = rng.normal(3e-4, 0.01, (2000, 5))
    return PortfolioEnv(returns, returns, window=10, episode_length=250, random_start=True,
                        transaction_cost_bps=1, leverage_limit=1.5, gross=1.5)  # fmt: skip


def timed(steps: int, callback: bool) -> tuple[float, dict[str, float]]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    import runlab
    from runlab.integrations.sb3 import RunlabCallback

    model = PPO("MlpPolicy", make_env(), n_steps=256, batch_size=64, n_epochs=4, seed=0,
                device="cpu")  # fmt: skip
    model.set_logger(configure(None, []))
    split: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        run = runlab.start_run({}, root=root, name="bench", capture_stdout=False)
        cb = RunlabCallback(run, per_rollout="steps") if callback else None
        t0 = time.perf_counter()
        model.learn(steps, callback=cb)
        seconds = time.perf_counter() - t0
        if cb is not None:
            split = {
                "env": sum(r["env_seconds"] for r in cb.recorded),
                "learner": sum(r["learner_seconds"] for r in cb.recorded),
            }
        run.finish()
    return steps / seconds, split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    plain = statistics.median(timed(args.steps, False)[0] for _ in range(args.repeats))
    runs = [timed(args.steps, True) for _ in range(args.repeats)]
    recorded = statistics.median(r for r, _ in runs)
    split = runs[len(runs) // 2][1]
    print(f"SB3 PPO on PortfolioEnv                     {plain:8.0f} steps/s")
    print(f"the same with RunlabCallback into a run     {recorded:8.0f} steps/s "
          f"({recorded / plain:.2f}x)")  # fmt: skip
    total = split["env"] + split["learner"]
    print(f"time in the environment (rollouts)          {split['env'] / total:8.0%}")
    print(f"time in the learner (updates)               {split['learner'] / total:8.0%}")


if __name__ == "__main__":
    main()
