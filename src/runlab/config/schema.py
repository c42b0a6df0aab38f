"""runlab's own config blocks, their types, allowed values and defaults.

One definition serves three purposes: the types and ``Literal`` choices that the validator
checks, the defaults that fill in what a config leaves out (so four lines make a complete run),
and the documentation in docs/config.md. Keys outside these blocks belong to the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any, Literal


def limits(default: Any = None, **bounds: float) -> Any:
    """A field with bounds the validator enforces (``ge``, ``gt``, ``le``, ``lt``; on each item
    of a list): ``epochs: int = limits(10, ge=1)``."""
    return field(default=default, metadata=bounds)


Task = Literal["regression", "classification", "ranking"]


@dataclass
class DataConfig:
    source: str | None = None  # required: a .npz, pkg.mod:fn, a CSV/Parquet panel, synthetic.*
    scaler: Literal["none", "standard", "robust"] = "standard"
    allow_nan: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)  # for an import-path source
    # panels (CSV/Parquet): one row per date and asset
    date_col: str = "date"
    asset_col: str = "asset"
    target: str | list[str] = "target"  # a list: one model output per target (horizons)
    horizons: list[int] | None = None  # periods each target spans; default: ret_h<N> -> N
    features: list[str] | None = None  # default: every other numeric column
    train_end: str | None = None  # last date of train (inclusive); default: 60% of dates
    val_end: str | None = None  # last date of val (inclusive); default: 80% of dates
    # synthetic sources
    n_samples: int = limits(4096, ge=3)
    n_features: int = limits(16, ge=1)
    n_classes: int = limits(3, ge=2)
    n_dates: int = limits(250, ge=3)
    n_assets: int = limits(100, ge=2)
    noise: float = limits(0.5, ge=0)
    val_fraction: float = limits(0.2, gt=0, lt=1)
    test_fraction: float = limits(0.2, ge=0, lt=1)
    seed: int = 0


@dataclass
class ModelConfig:
    name: str = "mlp"  # mlp, resmlp, gru, a plugin's (runlab.train.plugins) or pkg.mod:fn
    hidden: list[int] | int = field(default_factory=lambda: [128, 128], metadata={"ge": 1})
    dropout: float = limits(0.0, ge=0, lt=1)
    activation: Literal["relu", "gelu", "silu", "tanh"] = "relu"
    blocks: int = limits(2, ge=1)  # resmlp: residual blocks of width hidden[0]; gru: layers
    norm: bool = True  # resmlp: LayerNorm in each block
    in_features: int | None = None  # inferred from the data
    out_features: int | None = None  # inferred from the task and the data


@dataclass
class EarlyStoppingConfig:
    patience: int | None = limits(None, ge=0)  # None: off
    min_delta: float = limits(0.0, ge=0)
    monitor: str | None = None  # default: trainer.monitor
    mode: Literal["min", "max"] | None = None


@dataclass
class TrainerConfig:
    epochs: int = limits(10, ge=1)
    batch_size: int = limits(256, ge=1)
    grad_clip: float | None = limits(None, gt=0)
    accumulate: int = limits(1, ge=1)
    mixed_precision: Literal[False, "fp16", "bf16"] = False
    compile: bool = False
    on_nan: Literal["fail", "skip"] = "fail"
    monitor: str = "val.loss"  # what "best" means, for best.pt and best_epoch
    mode: Literal["min", "max"] | None = None  # default: max for accuracy, f1, r2, ic, ...
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    log_every: int = limits(
        50, ge=1
    )  # steps between step logs (the only host syncs in the step loop)
    data_on_device: Literal["auto", True, False] = "auto"
    # a name, or weighted loss terms {sharpe: 0.5, listnet: 0.2, ic: 0.1, huber: 0.1}
    loss: (
        Literal["auto", "mse", "huber", "mae", "cross_entropy", "listnet", "pairwise"]
        | dict[str, float]
    ) = "auto"
    init_from: str | None = None  # RUN[:CHECKPOINT]: start from that run's weights
    limit_train_batches: int | None = limits(None, ge=1)  # at most this many steps per epoch
    limit_val_batches: int | None = limits(None, ge=1)  # validate on this many batches


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw, adam, sgd, a plugin's or pkg.mod:fn
    lr: float = limits(1e-3, ge=0)
    weight_decay: float = limits(0.01, ge=0)
    momentum: float = limits(0.9, ge=0, lt=1)  # sgd


@dataclass
class ScheduleConfig:
    name: str = "constant"  # constant, step, cosine, plateau, a plugin's or pkg.mod:fn
    warmup_steps: int = limits(0, ge=0)  # cosine: linear warmup from 0 to optim.lr
    min_lr: float = limits(0.0, ge=0)  # cosine
    step_size: int = limits(10, ge=1)  # step: epochs between decays
    gamma: float = limits(0.1, ge=0)  # step
    factor: float = limits(0.5, gt=0, lt=1)  # plateau
    patience: int = limits(3, ge=0)  # plateau


@dataclass
class PortfolioConfig:
    """How the ``portfolio`` evaluator and ``runlab backtest`` turn predictions into a portfolio
    (scores -> weights, see runlab.finance.scores_to_weights) and what trading costs."""

    method: Literal["long_short", "long_only"] = "long_short"
    quantile: float = limits(0.2, gt=0, le=1)  # of each date's assets, per leg
    top_k: int | None = limits(None, ge=1)
    weighting: Literal["equal", "score"] = "equal"
    gross: float = limits(1.0, gt=0)
    transaction_cost_bps: float = limits(0.0, ge=0)
    leverage_limit: float | None = limits(None, gt=0)
    borrowing_cost: float = limits(0.0, ge=0)  # annual rate on the borrowed part
    initial_value: float = limits(1.0, gt=0)
    periods_per_year: int = limits(252, ge=1)


@dataclass
class EpisodicConfig:
    """``loop: episodic``: allocations through a transform, trained to maximise an episode
    reward by gradient ascent on windows sampled from the training period."""

    window: int = limits(32, ge=2)  # steps per episode
    batch_episodes: int = limits(64, ge=1)  # episodes per optimizer step, in one batched pass
    episodes_per_epoch: int = limits(2048, ge=1)
    transform: Literal["softmax", "tanh", "identity"] = "softmax"
    transition_penalty: float = limits(0.0, ge=0)  # per unit of turnover (L1 change)
    cvar_penalty: float = limits(0.0, ge=0)  # times -CVaR of the step log growths (log_growth)
    cvar_alpha: float = limits(0.05, gt=0, le=1)  # the tail: the worst 5% of steps
    drawdown_penalty: float = limits(0.0, ge=0)  # times the episode's max drawdown (log units)
    warm_start_epochs: int = limits(
        0, ge=0
    )  # supervised epochs (outputs -> next returns, MSE) first
    reward: str = "log_growth"  # or an import path 'pkg.mod:fn(allocations, prices, penalty)'


@dataclass
class RLConfig:
    """``loop: ppo``: Stable-Baselines3's PPO on runlab.rl.PortfolioEnv over the panel's train
    split; each epoch is ``steps_per_epoch`` environment steps, then a backtest of the policy
    over the validation split. Costs, leverage and borrowing are the ``portfolio`` block's."""

    steps_per_epoch: int = limits(2048, ge=1)  # rounded up to whole rollouts
    n_envs: int = limits(1, ge=1)
    n_steps: int = limits(256, ge=2)  # per environment per rollout
    batch_size: int = limits(64, ge=2)
    n_epochs: int = limits(4, ge=1)  # PPO's passes over each rollout
    gamma: float = limits(0.99, gt=0, le=1)
    gae_lambda: float = limits(0.95, ge=0, le=1)
    clip_range: float = limits(0.2, gt=0)
    ent_coef: float = limits(0.0, ge=0)
    vf_coef: float = limits(0.5, ge=0)
    target_kl: float | None = limits(None, gt=0)
    learning_rate: float = limits(3e-4, gt=0)
    warmup_steps: int = limits(0, ge=0)  # linear warm-up of the learning rate (env steps)
    min_lr: float = limits(0.0, ge=0)  # cosine decay to this by the last epoch
    grad_clip: float = limits(0.5, gt=0)  # max_grad_norm
    hidden: list[int] = field(default_factory=lambda: [64, 64])  # policy and value networks
    window: int = limits(20, ge=1)  # dates the policy sees
    episode_length: int | None = limits(None, ge=1)  # default: the whole train split
    transform: Literal["softmax", "tanh", "identity"] = "tanh"
    reward: Literal["log_growth", "differential_sharpe"] = "log_growth"
    turnover_penalty: float = limits(0.0, ge=0)
    cvar_penalty: float = limits(0.0, ge=0)
    cvar_alpha: float = limits(0.05, gt=0, le=1)
    entropy_floor: float | None = None  # a rollout's policy entropy below it: a warning event


@dataclass
class FiguresConfig:
    """The figures a run writes (figures/*.png): a preset, and per-family switches over it
    (None: as the preset says). runlab.train.figures lists the families."""

    preset: Literal["none", "minimal", "standard", "full"] = "standard"
    losses: bool | None = None  # train/val loss per epoch (minimal, standard, full)
    metrics: bool | None = None  # each validation metric per epoch (standard, full)
    lr: bool | None = None  # learning rate per epoch (full)
    steps: bool | None = None  # the logged step losses (full)
    ic: bool | None = None  # cumulative test IC by date, ranking (standard, full)
    backtest: bool | None = None  # runlab backtest's equity and drawdown (standard, full)
    dpi: int = limits(100, ge=10)


@dataclass
class CheckpointConfig:
    every: int | None = limits(None, ge=1)  # keep epoch_NNNN.pt every N epochs
    keep: bool = False  # keep every epoch_NNNN.pt (--keep-checkpoints)


@dataclass
class GateConfig:
    """A success criterion evaluated at epoch ends (see docs/monitoring.md)."""

    require: str | None = None  # required: an expression, e.g. 'val.sharpe > baseline.val.sharpe'
    name: str | None = None  # default: gate_<index>
    at_epoch: int | None = limits(None, ge=1)  # evaluate at this epoch ...
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
    timeout: float = limits(
        10.0, gt=0
    )  # seconds; a slow or failing alert is a warning, never a crash


ArtifactKind = Literal["config", "metrics", "scalars", "figures", "checkpoint"]
ALL_ARTIFACTS: list[ArtifactKind] = ["config", "metrics", "scalars", "figures", "checkpoint"]


@dataclass
class TensorboardSinkConfig:
    """Options of the tensorboard mirror (``sinks: [tensorboard]``)."""

    log_dir: str | None = None  # default: <run dir>/tensorboard; else <log_dir>/<run id>
    timeout: float = limits(60.0, gt=0)  # seconds the run's end waits for the mirror to catch up


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
    timeout: float = limits(60.0, gt=0)  # seconds the run's end waits for the mirror to catch up


@dataclass
class MlflowSinkConfig:
    """Options of the MLflow mirror (``sinks: [mlflow]``)."""

    tracking_uri: str | None = None  # default: $MLFLOW_TRACKING_URI, else MLflow's default
    experiment: str | None = None  # default: $MLFLOW_EXPERIMENT_NAME, else runlab
    artifact_location: str | None = None  # for an experiment runlab creates
    artifacts: list[ArtifactKind] = field(default_factory=lambda: list(ALL_ARTIFACTS))
    timeout: float = limits(60.0, gt=0)  # seconds the run's end waits for the mirror to catch up


SINK_CONFIGS: dict[str, type] = {
    "tensorboard": TensorboardSinkConfig,
    "wandb": WandbSinkConfig,
    "mlflow": MlflowSinkConfig,
}  # the built-in sinks' options: each is also a config block of its name (RunlabConfig below)


@dataclass
class _RunlabBlocks:
    data: DataConfig = field(default_factory=DataConfig)
    task: Task = "regression"
    model: ModelConfig = field(default_factory=ModelConfig)
    loop: str = "supervised"  # supervised, episodic, a plugin's or pkg.mod:fn (runlab.train.loops)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    # evaluators (runlab.evaluators): regression, classification, ranking, portfolio, a
    # plugin's or pkg.mod:fn; default: the task's own
    evaluate: list[str] | None = None
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    figures: FiguresConfig = field(default_factory=FiguresConfig)
    portfolio: PortfolioConfig = field(default_factory=PortfolioConfig)
    episodic: EpisodicConfig = field(default_factory=EpisodicConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    gates: list[GateConfig] = field(default_factory=list)
    baseline: str | None = None  # a run (id, prefix, name, path) for baseline.* and compare
    tags: dict[str, Any] = field(default_factory=dict)  # {pair: AAPL_AMZN}: ls -w tags.pair=...
    # where runs go (an env=cluster group can set it): under --output-dir, over $RUNLAB_ROOT
    runs_root: str | None = None
    # seconds between system metrics (CPU, RSS, GPU) samples; 0: none; null: $RUNLAB_SYSTEM_S or 5
    system_metrics_s: float | None = limits(None, ge=0)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    # runlab sweep / tune: where runs execute, {name: ray, address: auto, cpus_per_trial: 2};
    # the options are the launcher's own (docs/sweeps.md); --launcher and --launcher-opt win
    launcher: dict[str, Any] = field(default_factory=dict)
    sinks: list[str] = field(default_factory=list)  # tensorboard, wandb, mlflow, pkg.mod:Sink


# runlab's blocks: the ones above, then one block per built-in sink, named after it
RunlabConfig = make_dataclass(
    "RunlabConfig",
    [(name, options, field(default_factory=options)) for name, options in SINK_CONFIGS.items()],
    bases=(_RunlabBlocks,),
)


# Blocks where a `_target_` replaces the built-in choice: other keys are the target's kwargs.
TARGET_BLOCKS = {"model", "optim"}
