"""The trainer a preflight built, for the run that follows it in the same process.

The preflight builds the config's trainer, snapshots it as built, trains two batches, validates
and round-trips a checkpoint, then rewinds it to the snapshot (weights, optimizer, schedule,
scaler, random generators, counters) and leaves it here. The loop's training asks for a
trainer of the same class, config and dataset objects, seed and device and gets that one
instead of building the model a second time; anything else builds its own. One slot, taken
once: a later preflight replaces it, the first request empties it. The slot holds the config
and dataset objects alive, so their ``id`` cannot be reused while it holds them."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")
_SLOT: list[tuple[tuple[Any, ...], Any]] = []


def _key(cls: type, cfg: Any, data: Any, seed: int, device: Any) -> tuple[Any, ...]:
    return (cls, id(cfg), id(data), seed, str(device))


def hand_over(trainer: Any) -> None:
    """Leave ``trainer`` (rewound to as built) for the run."""
    key = _key(type(trainer), trainer.cfg, trainer.data, trainer.seed, trainer.device)
    _SLOT[:] = [(key, trainer)]


def trainer_for(cls: type[T], cfg: Any, data: Any, device: Any, seed: int) -> T:
    """The preflight's trainer when it was built for exactly these, else ``cls(...)``."""
    key = _key(cls, cfg, data, seed, device)
    taken, _SLOT[:] = list(_SLOT), []
    for held, trainer in taken:
        if held == key:
            handed: T = trainer
            return handed
    return cls(cfg, data, device, seed)  # type: ignore[call-arg]
