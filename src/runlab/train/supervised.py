"""The built-in supervised trainer (``loop: supervised``).

Data that fits stays on the device as tensors, batched by index slicing with a device-side
permutation: no DataLoader and no per-batch host-to-device copy. The step loop reads nothing
back from the device except at ``trainer.log_every`` steps (and per step with
``on_nan: skip``, which must know before the optimizer steps). A checkpoint holds everything
needed to continue bit-for-bit: model, optimizer, scheduler, grad scaler, RNG states, the
epoch's permutation and position, the running sums, the best value and the data scaler.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runlab._secrets import redact
from runlab.errors import ConfigError, RunlabError
from runlab.evaluators import load_evaluator
from runlab.tracking.run import Run
from runlab.train.data import Dataset
from runlab.train.losses import make_loss
from runlab.train.models import build_model, model_spec, output_size
from runlab.train.optim import make_optimizer, make_scheduler, monitor_mode
from runlab.train.progress import ProgressView

CHECKPOINT_FORMAT = 1


class NonFiniteLossError(RunlabError):
    """The training loss became NaN or infinite (``trainer.on_nan: fail``)."""

    exit_code = 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # CUDA generators too


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as err:
        raise ConfigError(f"--device {spec!r} is not a device (auto, cpu, cuda, cuda:N)") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec!r}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    elif device.type != "cpu":
        raise ConfigError(f"--device {spec!r}: use auto, cpu, cuda or cuda:N")
    return device


@dataclass
class _Tensors:
    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor | None

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])


@dataclass
class TrainState:
    epoch: int = 1  # the epoch being trained, 1-based
    batch: int = 0  # batches of it already done
    step: int = 0  # optimizer steps so far
    best: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0  # epochs without improvement (early stopping)
    es_best: float | None = None  # the early-stopping monitor's best
    skipped_steps: int = 0
    perm: torch.Tensor | None = None
    loss_sum: torch.Tensor | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class SupervisedTrainer:
    def __init__(
        self, cfg: dict[str, Any], data: Dataset, device: torch.device, seed: int = 42
    ) -> None:
        self.cfg, self.data, self.device, self.seed = cfg, data, device, seed
        t = cfg["trainer"]
        self.task = cfg["task"]
        self.families = list(cfg["evaluate"] or [self.task])
        self.evaluators = [load_evaluator(f) for f in self.families]
        self.amp = t["mixed_precision"] or False
        self.warnings: list[str] = []
        if self.amp == "fp16" and device.type != "cuda":
            self.warnings.append("trainer.mixed_precision=fp16 needs CUDA; training in fp32")
            self.amp = False
        seed_everything(seed)
        train = data.splits["train"]
        out = output_size(self.task, data.n_classes, data.target_shape)
        self.spec = model_spec(cfg["model"], data.in_features, out)
        # a scalar target per row: the model's (..., 1) output loses its last axis
        self.squeeze = self.task != "classification" and data.target_shape == ()
        self.y_ndim = int(train.y.ndim)
        self.model = build_model(self.spec).to(device)
        self.train_model: torch.nn.Module = self.model
        if t["compile"]:
            self.train_model = torch.compile(self.model)  # type: ignore[assignment]
        self.loss_fn = make_loss(self.task, t["loss"], panel=data.is_panel)
        self.term_sums: dict[str, torch.Tensor] = {}  # a composite loss's terms, this epoch
        self.tensors = {name: self._to_tensors(split) for name, split in data.splits.items()}
        self.batch_size = int(t["batch_size"])
        self.log_every = int(t["log_every"])
        self.steps_per_epoch = math.ceil(self.tensors["train"].rows / self.batch_size)
        if t["limit_train_batches"] is not None:  # a random subset of the batches each epoch
            self.steps_per_epoch = min(self.steps_per_epoch, int(t["limit_train_batches"]))
        accumulate = int(t["accumulate"])
        total_steps = math.ceil(self.steps_per_epoch / accumulate) * int(t["epochs"])
        self.optimizer = make_optimizer(cfg["optim"], self.model.parameters())
        self.scheduler, self.sched_per_step = make_scheduler(
            cfg["schedule"], self.optimizer, total_steps
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")
        self.monitor = str(t["monitor"])
        self.mode = t["mode"] or monitor_mode(self.monitor)
        self.gen = torch.Generator(device=self.tensors["train"].x.device).manual_seed(seed)
        self.state = TrainState()
        train_t = self.tensors["train"]
        self.samples_per_epoch = (
            int(train_t.mask.sum()) if train_t.mask is not None else train_t.rows
        )
        if self.steps_per_epoch * self.batch_size < train_t.rows:  # limit_train_batches
            share = self.steps_per_epoch * self.batch_size / train_t.rows
            self.samples_per_epoch = round(self.samples_per_epoch * share)

    # ------------------------------------------------------------------ data
    def _to_tensors(self, split: Any) -> _Tensors:
        on_device = self.cfg["trainer"]["data_on_device"]
        target = (
            self.device
            if on_device is True or (on_device == "auto" and self._fits(split))
            else torch.device("cpu")
        )
        y_dtype = torch.long if self.task == "classification" else torch.float32
        mask = torch.as_tensor(split.mask, device=target) if split.mask is not None else None
        return _Tensors(
            torch.as_tensor(split.x, dtype=torch.float32, device=target),
            torch.as_tensor(split.y, dtype=y_dtype, device=target),
            mask,
        )

    def _fits(self, split: Any) -> bool:
        if self.device.type != "cuda":
            return True
        free, _ = torch.cuda.mem_get_info(self.device)
        return bool(split.x.nbytes + split.y.nbytes < 0.4 * free)

    def _batch(self, t: _Tensors, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if t.x.device != self.device:  # streamed: pinned host memory, asynchronous copy
            idx = idx.to(t.x.device)
            x = t.x[idx].pin_memory().to(self.device, non_blocking=True)
            y = t.y[idx].pin_memory().to(self.device, non_blocking=True)
            m = t.mask[idx].to(self.device) if t.mask is not None else None
            return x, y, m  # type: ignore[return-value]
        return t.x[idx], t.y[idx], (t.mask[idx] if t.mask is not None else None)  # type: ignore[return-value]

    def _forward(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.amp:
            dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
            with torch.autocast(self.device.type, dtype=dtype):
                out = model(x)
        else:
            out = model(x)
        return self._fit_output(out)

    def _fit_output(self, out: torch.Tensor) -> torch.Tensor:
        """(rows, 1) -> (rows,) when each row's target is a scalar; any other mismatch with the
        target is left for the loss to reject (never broadcast)."""
        if self.squeeze and out.ndim == self.y_ndim + 1 and out.shape[-1] == 1:
            return out.squeeze(-1)
        return out

    # ------------------------------------------------------------------ training
    def train_batches(self, count: int | None = None) -> torch.Tensor:
        """Train the current epoch from ``state.batch`` on (``count`` batches at most, for the
        preflight). Returns the loss sum of the epoch so far, on the device.

        The step loop launches only the step's own kernels: losses are kept as a list of device
        scalars and summed at the end; a NaN or infinite loss poisons the weights, so
        ``on_nan: fail`` is detected from the logged loss and from the epoch's sum."""
        t, st, tcfg = self.tensors["train"], self.state, self.cfg["trainer"]
        accumulate, clip = int(tcfg["accumulate"]), tcfg["grad_clip"]
        skip_nan, log_every = tcfg["on_nan"] == "skip", int(tcfg["log_every"])
        if st.perm is None:
            st.perm = torch.randperm(t.rows, generator=self.gen, device=t.x.device)
            st.loss_sum = torch.zeros((), device=self.device)
        perm, bs, losses = st.perm, self.batch_size, []
        on_device, loss_fn, model = t.x.device == self.device, self.loss_fn, self.train_model
        scaled_backward = self.amp == "fp16" or accumulate > 1
        pause, on_log, on_batch = self.pause_requested, self.on_log_step, self.on_batch
        model.train()
        end = self.steps_per_epoch if count is None else min(self.steps_per_epoch, st.batch + count)
        while st.batch < end:
            if pause is not None and pause():
                break
            i = st.batch
            idx = perm[i * bs : (i + 1) * bs]
            if on_device:
                xb, yb = t.x[idx], t.y[idx]
                mb = t.mask[idx] if t.mask is not None else None
            else:
                xb, yb, mb = self._batch(t, idx)
            out = self._forward(model, xb) if self.amp else self._fit_output(model(xb))
            loss = loss_fn(out, yb, mb)
            if skip_nan and not bool(torch.isfinite(loss)):  # a per-step sync, in skip mode only
                st.skipped_steps += 1
                self.optimizer.zero_grad(set_to_none=True)
                st.batch += 1
                continue
            if scaled_backward:
                self.scaler.scale(loss / accumulate).backward()  # type: ignore[no-untyped-call]
            else:
                loss.backward()  # type: ignore[no-untyped-call]
            losses.append(loss.detach())
            for name, value in getattr(loss_fn, "last_terms", {}).items():  # no host sync
                self.term_sums[name] = self.term_sums.get(name, 0) + value
            st.batch += 1
            if on_batch is not None:  # the progress bar: a Python counter, no device sync
                on_batch(st.epoch, st.batch)
            if (i + 1) % accumulate == 0 or st.batch == self.steps_per_epoch:
                self._optimizer_step(clip)
                if on_log is not None and st.step % log_every == 0:
                    self._check_finite(loss)
                    on_log(loss)
        if losses:
            st.loss_sum = st.loss_sum + torch.stack(losses).sum()  # type: ignore[operator]
        assert st.loss_sum is not None
        self._check_finite(st.loss_sum)
        return st.loss_sum

    on_log_step: Any = None
    on_batch: Any = None
    pause_requested: Any = None

    def _should_pause(self) -> bool:
        return bool(self.pause_requested is not None and self.pause_requested())

    grad_norm: torch.Tensor | None = None  # at logged steps, on the device (read when logged)

    def _optimizer_step(self, clip: float | None) -> None:
        logged = self.on_log_step is not None and (self.state.step + 1) % self.log_every == 0
        norm = None
        if self.amp == "fp16":  # the GradScaler path: unscale, skip steps with inf grads
            if clip:
                self.scaler.unscale_(self.optimizer)
                norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if clip:
                norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            elif logged:  # one norm per log_every steps, for the nonfinite_grad diagnostic
                grads = [p.grad for p in self.model.parameters() if p.grad is not None]
                norm = torch.nn.utils.get_total_norm(grads) if grads else None
            self.optimizer.step()
        if logged:
            self.grad_norm = norm
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        if self.sched_per_step:
            self.scheduler.step()

    def _check_finite(self, loss: torch.Tensor) -> None:
        if not bool(torch.isfinite(loss)):
            raise NonFiniteLossError(
                f"non-finite training loss in epoch {self.state.epoch} by step {self.state.step}"
                " (trainer.on_nan: fail); lower optim.lr, set trainer.grad_clip, or "
                "trainer.on_nan: skip"
            )

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, split: str, max_batches: int | None = None) -> dict[str, Any]:
        """Loss and every evaluator on ``split``; floats, read back in one sync. Keys starting
        with '_' hold per-date series (ranking)."""
        t = self.tensors[split]
        self.model.eval()
        bs = self.batch_size * 4
        n = t.rows if max_batches is None else min(t.rows, bs * max_batches)
        preds = []
        for start in range(0, n, bs):
            idx = torch.arange(start, min(n, start + bs), device=t.x.device)
            xb, _, _ = self._batch(t, idx)
            preds.append(self._forward(self.model, xb).float())
        pred = torch.cat(preds)
        y = t.y[:n].to(self.device)
        mask = t.mask[:n].to(self.device) if t.mask is not None else None
        values: dict[str, torch.Tensor] = {"loss": self.loss_fn(pred, y, mask)}
        for name, value in getattr(self.loss_fn, "last_terms", {}).items():
            values[f"loss_{name}"] = value
        for evaluator in self.evaluators:
            values.update(evaluator(pred, y, mask, self.cfg))
        scalars = {k: v for k, v in values.items() if not k.startswith("_")}
        read = torch.stack([v.float() for v in scalars.values()]).tolist()
        out: dict[str, Any] = {k: _clean(v) for k, v in zip(scalars, read, strict=True)}
        for k, v in values.items():
            if k.startswith("_"):
                out[k] = [_clean(x) for x in v.tolist()]
        return out

    def improved(self, value: float | None) -> bool:
        best = self.state.best
        if value is None or math.isnan(value):
            return False
        if best is None:
            return True
        return value < best if self.mode == "min" else value > best

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> dict[str, Any]:
        st = self.state
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(),
            "python": _python_state(),
            "generator": self.gen.get_state(),
        }
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "rng": rng,
            "epoch": st.epoch,
            "batch": st.batch,
            "step": st.step,
            "perm": st.perm.cpu() if st.perm is not None else None,
            "loss_sum": st.loss_sum.cpu() if st.loss_sum is not None else None,
            "best": st.best,
            "best_epoch": st.best_epoch,
            "stale_epochs": st.stale_epochs,
            "es_best": st.es_best,
            "skipped_steps": st.skipped_steps,
            "history": st.history,
            "data_scaler": self.data.scaler,
            "model_spec": self.spec,
            "task": self.task,
            "n_classes": self.data.n_classes,
            "target_shape": list(self.data.target_shape),
            "feature_names": list(self.data.feature_names),
            "config": redact(self.cfg),
        }

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(self.checkpoint(), tmp)
        os.replace(tmp, path)

    def restore(self, path: Path) -> None:
        self.load(torch.load(path, map_location=self.device, weights_only=True))

    def load(self, ckpt: dict[str, Any]) -> None:
        """Back to the state of :meth:`checkpoint`'s dict: weights, optimizer, scheduler,
        scaler, counters, history, random generators."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["grad_scaler"])
        st = self.state
        st.epoch, st.batch, st.step = ckpt["epoch"], ckpt["batch"], ckpt["step"]
        st.best, st.best_epoch = ckpt["best"], ckpt["best_epoch"]
        st.stale_epochs, st.skipped_steps = ckpt["stale_epochs"], ckpt["skipped_steps"]
        st.es_best = ckpt["es_best"]
        st.history = list(ckpt["history"])
        data_device = self.tensors["train"].x.device
        st.perm = ckpt["perm"].to(data_device) if ckpt["perm"] is not None else None
        st.loss_sum = ckpt["loss_sum"].to(self.device) if ckpt["loss_sum"] is not None else None
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        self.gen.set_state(rng["generator"].cpu())
        np.random.set_state(_numpy_state_back(rng["numpy"]))
        random.setstate(_python_state_back(rng["python"]))
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        self.term_sums = {}

    # ------------------------------------------------------------------ preflight hand-over
    def snapshot(self) -> dict[str, Any]:
        """:meth:`checkpoint` copied (weights to host memory): the trainer as built, for the
        preflight to rewind to (:meth:`rewind`) before handing it over."""
        return host_copy(self.checkpoint())

    def rewind(self, built: dict[str, Any]) -> None:
        self.load(built)
        self.state = TrainState()


def _clean(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _numpy_state_back(s: dict[str, Any]) -> tuple[Any, ...]:
    keys = s["keys"].cpu().numpy().astype(np.uint32)
    return (s["name"], keys, s["pos"], s["has_gauss"], s["cached"])


def _python_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _python_state_back(s: list[Any]) -> tuple[Any, ...]:
    return (s[0], tuple(s[1]), s[2])


__all__ = [
    "NonFiniteLossError",
    "ProgressView",
    "Run",
    "SupervisedTrainer",
    "resolve_device",
    "seed_everything",
]


def host_copy(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint dict deep-copied, its model weights in host memory."""
    import copy

    weights = {k: v.detach().to("cpu", copy=True) for k, v in ckpt["model"].items()}
    return copy.deepcopy({**ckpt, "model": weights})
