"""Top eigenvalues and spectral density of a Hessian, with the data split over processes.

Each process (rank) holds a shard of the batches; every Hessian-vector product is the sum
of the ranks' shares, reduced with one ``all_reduce``, and the Krylov loop runs on every
rank with the same seed, so every rank gets the same numbers, the same as one process
holding all the data::

    torchrun --standalone --nproc_per_node=2 examples/distributed_torchrun.py
    python examples/distributed_torchrun.py              # one process, the same numbers
    torchrun --standalone --nproc_per_node=4 examples/distributed_torchrun.py --size default

On GPUs each rank uses the GPU of its ``LOCAL_RANK`` and NCCL; on CPUs, gloo.
"""

from __future__ import annotations

import argparse
import datetime
import os

import numpy as np
import torch
import torch.distributed as dist

import eigenscope as es
from eigenscope import zoo
from eigenscope.adapters import torch as est


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="W2", help="a zoo workload: W1, W2, W3, vgg, causal_lm")
    parser.add_argument("--size", default="tiny", choices=["tiny", "default", "large"])
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    if "RANK" in os.environ:  # started by torchrun, which sets RANK, WORLD_SIZE, MASTER_ADDR, ...
        # A rank that stops without reaching a collective makes the others fail after this timeout.
        dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=5))
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)

    # Every rank builds the same model (fixed seeds) and keeps its share of the batches:
    # batches rank, rank + world, ... (shards of unequal size are weighted by their samples).
    dtype = torch.float64 if args.size == "tiny" else torch.float32
    w = zoo.workload(args.workload, args.size, dtype=dtype, device=device)
    shard = w.batches[rank::world]

    # process_group="auto" (the default): the default group under torchrun, none in one process.
    H = est.hessian(w.model, w.loss_fn, shard)
    top = es.eigsh(H, k=5, which="LA", seed=0)  # the same seed on every rank: the same probes
    density = es.spectral_density(H, num_steps=30, num_probes=4, seed=1)

    if rank == 0:
        np.set_printoptions(precision=6, suppress=False)
        print(f"{world} process(es): Hessian of {H.num_params} parameters over {H.num_samples} samples")
        print(f"top-5 eigenvalues: {top.eigenvalues}")
        print(f"trace (SLQ): {density.trace():.6f}")
        print(f"negative mass: {density.negative_mass():.6f}")
        print(f"products: {H.num_matvecs} vectors in {H.num_calls} calls, {H.num_allreduces} all-reduces")
    if dist.is_initialized():
        # Every rank reaches here before any tears its group down: a rank that destroys its
        # gloo group while another still uses it can abort at exit.
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
