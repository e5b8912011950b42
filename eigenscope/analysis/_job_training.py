"""Stage 2 of ``eigenscope analyze`` (the built-in demo only): train the CNN, keep checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._job_inputs import Inputs
from ._progress import ProgressFactory

OPTIMIZER, LR, BATCH_SIZE = "Adam", 0.01, 64


@dataclass(frozen=True)
class Training:
    """How the demo was trained, and the checkpoints kept on the way.

    Attributes
    ----------
    epochs : int
    epoch_losses : tuple[float, ...]
        Mean training loss of each epoch.
    checkpoints : tuple[tuple[str, dict], ...]
        ``("epoch e", state dict)`` for each epoch to track (not written to ``results.json``).
    """

    epochs: int
    epoch_losses: tuple[float, ...]
    checkpoints: tuple[tuple[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        """The ``training`` section of ``results.json``."""
        return {
            "optimizer": OPTIMIZER,
            "lr": LR,
            "batch_size": BATCH_SIZE,
            "epochs": self.epochs,
            "epoch_losses": list(self.epoch_losses),
        }


def train_demo(
    inputs: Inputs, *, epochs: int, seed: int, track_epochs: Sequence[int], progress: ProgressFactory
) -> Training:
    """Train the demo CNN in place with Adam for ``epochs``; keep the ``track_epochs`` before the last."""
    from . import _demo

    bar = progress(f"training ({OPTIMIZER})", epochs)
    losses: list[float] = []

    def on_epoch(epoch: int, loss: float) -> None:
        losses.append(loss)
        bar.set_postfix_str(f"loss {loss:.3f}", refresh=False)
        bar.update(1)

    try:
        checkpoints = _demo.train(
            inputs.model,
            inputs.train,
            epochs=epochs,
            batch_size=BATCH_SIZE,
            lr=LR,
            seed=seed,
            checkpoint_epochs=tuple(e for e in track_epochs if e < epochs),
            on_epoch=on_epoch,
        )
    finally:
        bar.close()
    return Training(epochs, tuple(losses), tuple(checkpoints))
