"""The words for the torch constructors' parameters, results and errors (the parameters
every adapter shares are documented in :mod:`eigenscope.adapters._options`)."""

from __future__ import annotations

PARAMETERS = {
    "model": """
        The ``torch.nn.Module``, in the mode (train/eval) the curvature is wanted in.
        """,
    "loss_fn": """
        ``loss_fn(outputs, targets)`` -> the *mean* loss of a batch (a 0-d tensor), such as
        ``torch.nn.functional.cross_entropy``; the name ``"cross_entropy"``, ``"mse"``,
        ``"bce"`` (BCE with logits) or ``"causal_lm"`` (next-token cross-entropy of a causal
        language model: logits ``(n, T, V)`` and labels ``(n, T)`` shifted by one, labels
        ``-100`` and padding (``attention_mask == 0``) not predicted, the *mean over the
        predicted tokens*; a batch then weighs its number of predicted tokens, so the
        operator is the matrix of the mean over every predicted token of the data, and the
        per-sample gradients of ``gradient_covariance`` are per-token gradients); or
        ``None``: the model's own loss (``outputs.loss``, a Hugging Face model given its
        ``labels``), each batch weighted by its number of samples. A named or torch loss
        gets the model's logits (see ``output``). A summed loss (``reduction="sum"``) is refused: it
        is checked on batch 0 by comparing the loss with its values on the two halves of the
        batch (two loss evaluations, no forward pass); ``reduction="sum"`` below gives the
        matrix of the summed loss.
        """,
    "data": """
        A re-iterable of batches (a list or a ``DataLoader``): ``(inputs, targets)`` pairs,
        or mappings with the targets inside (the Hugging Face convention: ``input_ids``,
        ``attention_mask``, ``labels``; see ``targets``). ``inputs`` is passed as
        ``model(x)`` for a tensor, ``model(*x)`` for a tuple and ``model(**x)`` for a mapping
        (with ``use_cache=False`` when the model's ``forward`` takes it), or as ``forward``
        says. The batch size (its weight) is the leading dimension of the targets, else of
        the first tensor of the inputs. Generators and other one-shot iterators are refused.
        """,
    "targets": """
        Where mapping batches hold their targets: a key (``"labels"``, the default; the
        other entries are the inputs, and the model's own loss keeps it among them), or a
        callable ``batch -> targets`` (the whole batch is then the inputs).
        """,
    "forward": """
        ``forward(model, inputs) -> outputs``, for any other calling convention: a model
        taking one dict (``lambda model, x: model(x)``), extra keyword arguments. ``None``:
        the default call described under ``data``.
        """,
    "output": """
        What the loss takes of the model's outputs (and what the GGN's ``J`` and ``H_ℓ`` are
        of): ``None`` picks the logits of a ``ModelOutput``/mapping (``"logits"``) or tuple
        (its first tensor of at least one dimension) for a named or torch loss, and for
        another callable when it fails on the raw outputs; a key or attribute name, a tuple
        position, or a callable ``outputs -> tensor``.
        """,
    "dropout": """
        ``"on"``: the model as it is (active dropout is refused, see ``allow_stochastic``);
        ``"off"``: every dropout module (and ``nn.MultiheadAttention``'s dropout) has
        probability 0 during the products, so dropout is the identity while BatchNorm and
        everything else run in the mode the user chose; the probabilities are restored
        after every call.
        """,
    "params": """
        The parameters to differentiate: ``None`` (all with ``requires_grad``), names of
        parameters or modules, modules, parameter tensors, or a predicate
        ``(name, parameter) -> bool``. The others are held fixed (no gradient is formed
        for them: leaving out embedding tables saves their backward pass).
        """,
    "loss_hessian": """
        ``H_ℓ``, the Hessian of the loss with respect to the outputs: ``"auto"``, a closed
        form (``"cross_entropy"``, ``"mse"``, ``"bce"``) or ``"autodiff"``, as described above.
        """,
    "per_sample_loss": """
        ``(outputs, targets) -> (n_b,)``, the per-sample losses whose mean is ``loss_fn``
        (``per="sample"``); ``None``: found as described above.
        """,
    "mode": """
        ``"rev-rev"`` (double backward) or ``"fwd-rev"`` (``torch.func`` forward over
        reverse); ``"auto"`` picks ``"rev-rev"``, which measured faster on CPU.
        """,
    "vectorize": """
        Batch the vectors of a block through one ``vmap``-ed pass; ``"auto"``: on CUDA
        only (on CPU it measured slower than a loop over the vectors).
        """,
    "cache_graphs": """
        Keep every batch's first-order graph between products, so that a product costs
        only the per-vector passes (``mode="rev-rev"`` only). It holds about
        ``cache_bytes`` (estimated from batch 0 when the operator is built: the memory
        autograd saves for it, times the number of batches); over ``max_cache_bytes``
        ``True`` raises ``ValueError`` and ``"auto"`` falls back to not caching. Graphs
        are rebuilt automatically when a parameter or buffer is written in place.
        """,
    "compile": """
        Run each batch's product through ``torch.compile`` (one pure ``torch.func``
        function of the parameters, the batch and a vector, compiled for batch 0's shapes;
        batches of other shapes run eagerly). Before its first use the compiled product is
        checked against the eager one on batch 0 (relative difference ≤ 10·√ε of the
        dtype); a compile failure or a mismatch turns it off with one warning. ``True``:
        compile at the first product. ``"auto"``: compile only when the running algorithm
        announced enough products to pay the compile time back — with a warm on-disk
        compile cache (an earlier run compiled this product) when the predicted saving is
        ≥ 1.5 × the compile time measured then; with a cold one only when the planned
        products would take about half an hour eagerly. ``compile_seconds``,
        ``compiled`` and ``compile_reason`` say what happened. Not for stochastic models.
        """,
    "max_cache_bytes": """
        The budget for the cache; ``None`` is half the free memory of the device (GPU) or
        half the host's available memory (CPU).
        """,
    "stream": """
        Move each batch to the device at every product instead of once at construction.
        """,
    "blocks": """
        ``"module"`` (one block per module owning parameters), a mapping
        ``name -> params`` or a sequence of ``params`` selections partitioning the selected
        parameters: the operator then applies only the diagonal blocks (a block-diagonal
        approximation). One product costs one first-order pass per batch and one
        per-vector pass per block and vector. :func:`layerwise` returns separate
        operators instead.
        """,
    "allow_stochastic": """
        Accept active dropout or other randomness (refused by default, and the loss of
        the first batch is computed twice to check determinism).
        """,
    "process_group": """
        Data parallelism over ``torch.distributed``: each rank passes its own shard of the
        data (whole batches; shards may be uneven) and every product is summed over the
        ranks with one ``all_reduce`` of ``n · k`` numbers (a block of ``k`` vectors), so
        that every rank gets the full-data product, the mean over the samples of all ranks.
        ``"auto"`` (default): the default group when ``torch.distributed`` is initialized
        with more than one process, else none; a ``ProcessGroup``: that group; ``None`` or
        ``False``: none, this process's data is the whole data set (to build a local operator
        on one rank of a distributed job). Every rank must build the same operator (checked
        once, here, in one collective, which also counts the samples) and multiply the same
        vectors: run the same algorithm with the same ``seed`` on every rank. A rank that
        fails, here or in a product, makes every rank raise (see ``docs/distributed.md``).
        """,
}

RETURNS = """
    CurvatureOperator
        A symmetric ``(n, n)`` :class:`eigenscope.LinearOperator` on torch tensors of the
        parameters' device and dtype, ``n`` the number of selected parameters.
    """

RAISES = """
    TypeError
        A one-shot iterator or a malformed batch as ``data`` (with ``stream=True``, also an
        iterable that yields nothing on a second pass); a model that is not a module.
    ValueError
        Empty data, a loss that is not a 0-d tensor, a sum-reduced loss, a stochastic model,
        parameters with ``requires_grad=False`` in ``params``, bad options, a cache over its
        budget.
    DistributedError
        With a process group, on the ranks that did not fail themselves: another rank
        failed to build its operator, or the ranks built different operators.
    FloatingPointError
        A NaN or Inf loss, naming the batch (here for batch 0, at product time for the others).
    """
