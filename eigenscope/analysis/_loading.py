"""Loading the user's model, data and loss from ``module:name`` specifications.

Every problem is raised as a :class:`JobError` whose message fits on one line: the
command prints it without a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from typing import Any


class JobError(Exception):
    """A problem with the user's input or environment, reported as one line without a traceback."""


@contextlib.contextmanager
def _cwd_on_path() -> Iterator[None]:
    # ``python -m`` puts the working directory on sys.path, a console script does not:
    # add it so that ``--model mymodule:factory`` finds a module next to the user.
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _import_module(name: str, flag: str) -> Any:
    if name.endswith(".py"):
        if not os.path.isfile(name):
            raise JobError(f"{flag}: file {name!r} does not exist")
        unique = f"_eigenscope_user_{abs(hash(os.path.abspath(name)))}"
        spec = importlib.util.spec_from_file_location(unique, name)
        if spec is None or spec.loader is None:
            raise JobError(f"{flag}: cannot load {name!r} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[unique]
            raise JobError(f"{flag}: importing {name!r} failed: {describe(exc)}") from exc
        return module
    with _cwd_on_path():
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            raise JobError(f"{flag}: cannot import module {name!r}: {exc}") from exc
        except Exception as exc:
            raise JobError(f"{flag}: importing module {name!r} failed: {describe(exc)}") from exc


def resolve_object(spec: str, flag: str) -> Any:
    """``"package.module:attr.path"`` (or ``"file.py:attr"``) -> the object it names."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise JobError(f"{flag} must look like module:name (e.g. mypackage.models:make_model), got {spec!r}")
    module_name, attr = spec.split(":")
    obj = _import_module(module_name, flag)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise JobError(f"{flag}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def describe(exc: BaseException) -> str:
    """``"TypeName: message"`` on one line, at most about 300 characters."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _call_factory(spec: str, flag: str) -> Any:
    factory = resolve_object(spec, flag)
    if not callable(factory):
        raise JobError(f"{flag}: {spec} is a {type(factory).__name__}, not a callable factory")
    try:
        return factory()
    except JobError:
        raise
    except Exception as exc:
        raise JobError(f"{flag}: calling {spec}() failed: {describe(exc)}") from exc


def load_model(spec: str, checkpoint: str | None = None) -> Any:
    """The ``torch.nn.Module`` returned by the factory ``spec``, with ``checkpoint`` loaded (strictly)."""
    from torch import nn

    from ._checkpoints import load_checkpoint

    model = _call_factory(spec, "--model")
    if not isinstance(model, nn.Module):
        raise JobError(f"--model: {spec}() returned a {type(model).__name__}, not a torch.nn.Module")
    if checkpoint is not None:
        state = read_checkpoint_file(checkpoint, "--checkpoint")
        try:
            load_checkpoint(model, state)
        except ValueError as exc:
            raise JobError(f"--checkpoint {checkpoint!r}: {one_line(exc)}") from exc
    return model


_STATE_DICTS_ONLY = (
    "eigenscope loads only state dicts of tensors, written by torch.save(model.state_dict(), FILE), "
    "and runs no code from the file"
)


def read_checkpoint_file(path: str, flag: str) -> dict[str, Any]:
    """The state dict in the file ``path``; a :class:`JobError` saying what is wrong with the file if none.

    torch's own messages for a file it refuses suggest ``weights_only=False``, that is,
    running code from the file: the messages here say what the file is instead.
    """
    from ._checkpoints import read_checkpoint

    _check_readable(path, flag)
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols on its way to refusing a file: the one line below says it all.
            warnings.simplefilter("ignore")
            return read_checkpoint(path)
    except ValueError as exc:
        if exc.__cause__ is None:  # read, but not a mapping of names to tensors
            raise JobError(f"{flag}: {one_line(exc)}; {_STATE_DICTS_ONLY}") from exc
        raise JobError(f"{flag}: cannot read checkpoint {path!r}: {_unreadable(exc.__cause__)}") from exc


def _check_readable(path: str, flag: str) -> None:
    if os.path.isdir(path):
        raise JobError(f"{flag}: {path!r} is a directory, not a checkpoint file")
    if not os.path.exists(path):
        raise JobError(f"{flag}: checkpoint {path!r} does not exist")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise JobError(f"{flag}: cannot read checkpoint {path!r}: {exc.strerror or exc}") from exc


def _unreadable(cause: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` failed, in eigenscope's words."""
    text = str(cause)
    if "Unsupported global" in text or "can still be loaded" in text:
        return (
            "it holds pickled Python objects besides tensors (a whole model saved with torch.save(model)?); "
            + _STATE_DICTS_ONLY
        )
    return f"it is not a PyTorch checkpoint, or a damaged one; {_STATE_DICTS_ONLY}"


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line."""
    return " ".join(str(exc).split())


def load_data(spec: str, flag: str) -> list[Any]:
    """The batches from a data factory, materialized once (a generator is fine here)."""
    data = _call_factory(spec, flag)
    try:
        batches = list(data)
    except TypeError:
        raise JobError(f"{flag}: {spec}() returned a {type(data).__name__}, not an iterable of batches") from None
    except Exception as exc:
        raise JobError(f"{flag}: iterating over {spec}() failed: {describe(exc)}") from exc
    if not batches:
        raise JobError(f"{flag}: {spec}() yielded no batches")
    for i, batch in enumerate(batches):
        if not isinstance(batch, Mapping) and (not isinstance(batch, (tuple, list)) or len(batch) != 2):
            raise JobError(
                f"{flag}: batch {i} of {spec}() is not an (inputs, targets) pair, nor a mapping with the "
                "targets under 'labels' (the Hugging Face convention)"
            )
    return batches


def resolve_loss(spec: str) -> Any:
    """``cross_entropy``/``mse``/``bce``/``causal_lm`` or ``module:function``."""
    if ":" in spec:
        fn = resolve_object(spec, "--loss")
        if not callable(fn):
            raise JobError(f"--loss: {spec} is not callable")
        return fn
    names = {"cross_entropy", "ce", "mse", "bce", "causal_lm"}
    if spec not in names:
        raise JobError(f"--loss must be cross_entropy, mse, bce, causal_lm or module:function, got {spec!r}")
    return {"ce": "cross_entropy"}.get(spec, spec)


def split(batch: Any, index: int) -> tuple[Any, Any, int]:
    """``(inputs, targets, size)`` of a batch as the torch adapters read it by default (an
    ``(inputs, targets)`` pair, or a mapping with the targets under ``"labels"``)."""
    import torch

    from ..adapters import BatchFormat, split_batch

    return tuple(split_batch(batch, index, BatchFormat(), is_array=lambda x: isinstance(x, torch.Tensor)))


def num_classes(model: Any, batches: list[Any]) -> int | None:
    """The number of classes when the targets of the first batch are integer labels: dim 1
    of the outputs (of their logits for a ``ModelOutput`` or mapping); ``None`` for a
    language model's ``(batch, length, vocabulary)`` logits with ``(batch, length)`` labels
    (a vocabulary is no class count whose outliers are worth computing)."""
    import torch

    from ..adapters.torch import call_model

    inputs, targets, _ = split(batches[0], 0)
    if not isinstance(targets, torch.Tensor) or targets.is_floating_point():
        return None
    with torch.no_grad():
        state = {**dict(model.named_parameters()), **{k: b.clone() for k, b in model.named_buffers()}}
        outputs = call_model(model, state, to_device(inputs, next(model.parameters()).device))
    if isinstance(outputs, Mapping) or hasattr(outputs, "logits"):
        outputs = outputs["logits"] if isinstance(outputs, Mapping) and "logits" in outputs else outputs
        outputs = getattr(outputs, "logits", outputs)
    if not isinstance(outputs, torch.Tensor) or outputs.ndim < 2:
        return None
    if outputs.ndim == 3 and tuple(targets.shape) == tuple(outputs.shape[:2]):
        return None  # next-token logits
    return int(outputs.shape[1])


def to_device(obj: Any, device: Any) -> Any:
    """Move every tensor of a (nested) tuple/list/dict to ``device``."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
