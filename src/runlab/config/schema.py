"""runlab's own config blocks, their types, allowed values and defaults.

One definition serves three purposes: the types and ``Literal`` choices that the validator
checks, the defaults that fill in what a config leaves out (so four lines make a complete run),
and the documentation in docs/config.md. Keys outside these blocks belong to the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Task = Literal["regression", "classification", "ranking"]
Family = Literal["regression", "classification", "ranking", "portfolio"]


@dataclass
class DataConfig:
    source: str | None = None  # required: a .npz, pkg.mod:fn, a CSV/Parquet panel, synthetic.*
    scaler: Literal["none", "standard", "robust"] = "standard"
    allow_nan: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)  # for an import-path source
    # panels (CSV/Parquet): one row per date and asset
    date_col: str = "date"
    asset_col: str = "asset"
    target: str = "target"
    features: list[str] | None = None  # default: every other numeric column
    train_end: str | None = None  # last date of train (inclusive); default: 60% of dates
    val_end: str | None = None  # last date of val (inclusive); default: 80% of dates
    # synthetic sources
    n_samples: int = 4096
    n_features: int = 16
    n_classes: int = 3
    n_dates: int = 250
    n_assets: int = 100
    noise: float = 0.5
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0


@dataclass
class ModelConfig:
    name: Literal["mlp", "resmlp", "gru"] = "mlp"
    hidden: list[int] | int = field(default_factory=lambda: [128, 128])
    dropout: float = 0.0
    activation: Literal["relu", "gelu", "silu", "tanh"] = "relu"
    blocks: int = 2  # resmlp: residual blocks of width hidden[0]; gru: layers
    norm: bool = True  # resmlp: LayerNorm in each block
    in_features: int | None = None  # inferred from the data
    out_features: int | None = None  # inferred from the task and the data


@dataclass
class EarlyStoppingConfig:
    patience: int | None = None  # None: off
    min_delta: float = 0.0
    monitor: str | None = None  # default: trainer.monitor
    mode: Literal["min", "max"] | None = None


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 256
    grad_clip: float | None = None
    accumulate: int = 1
    mixed_precision: Literal[False, "fp16", "bf16"] = False
    compile: bool = False
    on_nan: Literal["fail", "skip"] = "fail"
    monitor: str = "val.loss"  # what "best" means, for best.pt and best_epoch
    mode: Literal["min", "max"] | None = None  # default: max for accuracy, f1, r2, ic, ...
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    log_every: int = 50  # steps between step logs (the only host syncs in the step loop)
    data_on_device: Literal["auto", True, False] = "auto"
    loss: Literal["auto", "mse", "huber", "mae", "cross_entropy", "listnet", "pairwise"] = "auto"


@dataclass
class OptimConfig:
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    momentum: float = 0.9  # sgd


@dataclass
class ScheduleConfig:
    name: Literal["constant", "step", "cosine", "plateau"] = "constant"
    warmup_steps: int = 0  # cosine: linear warmup from 0 to optim.lr
    min_lr: float = 0.0  # cosine
    step_size: int = 10  # step: epochs between decays
    gamma: float = 0.1  # step
    factor: float = 0.5  # plateau
    patience: int = 3  # plateau


@dataclass
class PortfolioConfig:
    """How the ``portfolio`` evaluator and ``runlab backtest`` turn predictions into a portfolio
    (scores -> weights, see runlab.finance.scores_to_weights) and what trading costs."""

    method: Literal["long_short", "long_only"] = "long_short"
    quantile: float = 0.2
    top_k: int | None = None
    weighting: Literal["equal", "score"] = "equal"
    gross: float = 1.0
    transaction_cost_bps: float = 0.0
    leverage_limit: float | None = None
    borrowing_cost: float = 0.0  # annual rate on the borrowed part
    initial_value: float = 1.0
    periods_per_year: int = 252


@dataclass
class EpisodicConfig:
    """``loop: episodic``: allocations through a transform, trained to maximise an episode
    reward by gradient ascent on windows sampled from the training period."""

    window: int = 32  # steps per episode
    batch_episodes: int = 64  # episodes per optimizer step, in one batched pass
    episodes_per_epoch: int = 2048
    transform: Literal["softmax", "tanh", "identity"] = "softmax"
    transition_penalty: float = 0.0
    warm_start_epochs: int = 0  # supervised epochs (outputs -> next returns, MSE) first
    reward: str = "log_growth"  # or an import path 'pkg.mod:fn(allocations, prices, penalty)'


@dataclass
class CheckpointConfig:
    every: int | None = None  # keep epoch_NNNN.pt every N epochs
    keep: bool = False  # keep every epoch_NNNN.pt (--keep-checkpoints)


@dataclass
class GateConfig:
    """A success criterion evaluated at epoch ends (see docs/monitoring.md)."""

    require: str | None = None  # required: an expression, e.g. 'val.sharpe > baseline.val.sharpe'
    name: str | None = None  # default: gate_<index>
    at_epoch: int | None = None  # evaluate at this epoch ...
    every_epoch: bool = False  # ... or at every epoch
    on_fail: Literal["stop", "warn"] = "stop"  # stop: end the run `stopped`, last.pt saved


AlertEvent = Literal["gate_failed", "finished", "failed", "stopped", "preempted", "pruned"]


@dataclass
class AlertsConfig:
    """Run a command or POST to a webhook on gate failures and when the run ends."""

    command: str | None = None  # a shell command; the alert as JSON on stdin, RUNLAB_* env vars
    webhook: str | None = None  # an http(s) URL that receives the alert as a JSON POST
    on: list[AlertEvent] = field(
        default_factory=lambda: ["gate_failed", "finished", "failed", "stopped", "preempted"]
    )
    timeout: float = 10.0  # seconds; a slow or failing alert is a warning, never a crash


ArtifactKind = Literal["config", "metrics", "scalars", "figures", "checkpoint"]
ALL_ARTIFACTS: list[ArtifactKind] = ["config", "metrics", "scalars", "figures", "checkpoint"]


@dataclass
class TensorboardSinkConfig:
    """Options of the tensorboard mirror (``sinks: [tensorboard]``)."""

    log_dir: str | None = None  # default: <run dir>/tensorboard; else <log_dir>/<run id>
    timeout: float = 60.0  # seconds the run's end waits for the mirror to catch up


@dataclass
class WandbSinkConfig:
    """Options of the Weights & Biases mirror (``sinks: [wandb]``)."""

    project: str | None = None  # default: $WANDB_PROJECT, else runlab
    entity: str | None = None  # default: $WANDB_ENTITY, else your W&B default
    group: str | None = None  # default: the sweep or study of the run
    tags: list[str] = field(default_factory=list)  # added to the run's tags (key=value)
    mode: Literal["online", "offline", "disabled"] | None = None  # default: $WANDB_MODE, online
    run_name: str | None = None  # default: the run's name
    dir: str | None = None  # where wandb/ goes; default: $WANDB_DIR, else the working directory
    artifacts: list[ArtifactKind] = field(default_factory=lambda: list(ALL_ARTIFACTS))
    timeout: float = 60.0  # seconds the run's end waits for the mirror to catch up


@dataclass
class MlflowSinkConfig:
    """Options of the MLflow mirror (``sinks: [mlflow]``)."""

    tracking_uri: str | None = None  # default: $MLFLOW_TRACKING_URI, else MLflow's default
    experiment: str | None = None  # default: $MLFLOW_EXPERIMENT_NAME, else runlab
    artifact_location: str | None = None  # for an experiment runlab creates
    artifacts: list[ArtifactKind] = field(default_factory=lambda: list(ALL_ARTIFACTS))
    timeout: float = 60.0  # seconds the run's end waits for the mirror to catch up


SINK_CONFIGS: dict[str, type] = {
    "tensorboard": TensorboardSinkConfig,
    "wandb": WandbSinkConfig,
    "mlflow": MlflowSinkConfig,
}


@dataclass
class RunlabConfig:
    data: DataConfig = field(default_factory=DataConfig)
    task: Task = "regression"
    model: ModelConfig = field(default_factory=ModelConfig)
    loop: str = "supervised"
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    evaluate: list[Family] | None = None  # default: the task's own family
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    portfolio: PortfolioConfig = field(default_factory=PortfolioConfig)
    episodic: EpisodicConfig = field(default_factory=EpisodicConfig)
    gates: list[GateConfig] = field(default_factory=list)
    baseline: str | None = None  # a run (id, prefix, name, path) for baseline.* and compare
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    sinks: list[str] = field(default_factory=list)  # tensorboard, wandb, mlflow, pkg.mod:Sink
    tensorboard: TensorboardSinkConfig = field(default_factory=TensorboardSinkConfig)
    wandb: WandbSinkConfig = field(default_factory=WandbSinkConfig)
    mlflow: MlflowSinkConfig = field(default_factory=MlflowSinkConfig)


# Blocks where a `_target_` replaces the built-in choice: other keys are the target's kwargs.
TARGET_BLOCKS = {"model", "optim"}
HIGHER_IS_BETTER = (
    "accuracy",
    "f1",
    "r2",
    "ic",
    "rank_ic",
    "ic_ir",
    "sharpe",
    "sortino",
    "calmar",
    "scale",
    "ir",
    "annual_return",
    "cumulative_return",
    "final_value",
    "hit_rate",
    "max_drawdown",
)  # drawdowns are negative: higher is better
