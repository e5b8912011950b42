"""Stage 1 of ``eigenscope analyze``: the model, data and loss (the demo's or the user's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ._loading import (
    JobError,
    describe,
    load_data,
    load_model,
    num_classes,
    one_line,
    read_checkpoint_file,
    resolve_loss,
    split,
    to_device,
)

if TYPE_CHECKING:
    from ._settings import AnalyzeSettings

DEMO_SOURCE = "built-in: a small CNN trained on scikit-learn's 8x8 digits"


@dataclass(frozen=True)
class Inputs:
    """The model and data of a run.

    Attributes
    ----------
    model : torch.nn.Module
        On the run's device (and dtype, when one was asked for).
    loss_fn
        A callable or a name the torch adapters know (``"cross_entropy"``, ...).
    train, heldout : list of (inputs, targets) batches
        The data of the matrix, and the optional held-out set of the loss curves.
    source : str
        Where the model came from, for the results.
    num_classes : int or None
        ``--num-classes``, else the number read off the model's outputs (None when the
        targets are not class labels).
    device : torch.device
    """

    model: Any
    loss_fn: Any
    train: list[Any]
    heldout: list[Any] | None
    source: str
    num_classes: int | None
    device: Any

    def data_sets(self) -> dict[str, list[Any]]:
        """``{"train": ...}``, plus ``"heldout"`` when there is one."""
        return {"train": self.train} if self.heldout is None else {"train": self.train, "heldout": self.heldout}


class ModelFacts(NamedTuple):
    """The ``model`` section of ``results.json``."""

    source: str
    class_name: str
    num_params: int
    dtype: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"source": self.source, "class": self.class_name, "num_params": self.num_params, "dtype": self.dtype}


class DataFacts(NamedTuple):
    """The ``data`` section of ``results.json``."""

    num_samples: int
    num_batches: int
    heldout_samples: int | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return self._asdict()


def facts(inputs: Inputs, op: Any) -> tuple[ModelFacts, DataFacts]:
    """What ``results.json`` says about the model and data, from the inputs and their operator."""
    heldout = None if inputs.heldout is None else num_samples(inputs.heldout)
    model = ModelFacts(inputs.source, type(inputs.model).__name__, op.shape[0], str(op.dtype).replace("torch.", ""))
    return model, DataFacts(op.num_samples, op.num_batches, heldout)


def load_inputs(settings: AnalyzeSettings) -> Inputs:
    """Model, data and loss: the built-in demo's, or the user's factories'.

    Raises
    ------
    JobError
        For anything wrong with them, and for ``--k``, ``--k-bottom`` or ``--num-classes``
        that do not fit the model (checked here, before training and before anything is
        written).
    """
    import torch

    from . import _demo

    device = _device(settings.device)
    if settings.demo:
        try:
            train, heldout = _demo.digits_split(settings.seed)
        except ImportError as exc:
            raise JobError(f"the built-in demo needs scikit-learn for its data: {exc}") from exc
        model: Any = _demo.build_model(settings.seed)
        loss_fn: Any = "cross_entropy"
        source = DEMO_SOURCE
        # The demo trains on these tensors directly: put them on the device once.
        train = [to_device(b, device) for b in train]
        heldout = [to_device(b, device) for b in heldout]
    else:
        model = load_model(settings.model, settings.checkpoint)
        for path in settings.track:
            # Read now (and again when tracked): a bad file stops the run before the long part.
            read_checkpoint_file(path, "--track")
        train = load_data(settings.data, "--data")
        heldout = load_data(settings.heldout, "--heldout") if settings.heldout else None
        loss_fn = resolve_loss(settings.loss)
        source = settings.model + (f" + {settings.checkpoint}" if settings.checkpoint else "")
    dtype = {"float32": torch.float32, "float64": torch.float64}.get(settings.dtype or "")
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device=device)
    try:
        detected = num_classes(model, train)
    except Exception as exc:
        raise JobError(f"the model fails on the first batch of --data: {describe(exc)}") from exc
    # The size of the matrices: the trainable parameters, as the operators select them.
    settings.check_sizes(sum(p.numel() for p in model.parameters() if p.requires_grad), detected)
    classes = settings.num_classes if settings.num_classes is not None else detected
    return Inputs(model, loss_fn, train, heldout, source, classes, device)


def _device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise JobError(f"--device: {one_line(exc)}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise JobError(f"--device {name}: CUDA is not available on this machine")
    return device


def num_samples(batches: list[Any]) -> int:
    """The number of samples in the batches (``(inputs, targets)`` pairs or mappings with
    the targets inside, as the torch adapters count them by default)."""
    return sum(split(batch, i)[2] for i, batch in enumerate(batches))
