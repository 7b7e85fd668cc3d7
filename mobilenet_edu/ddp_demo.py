"""Lesson 10's two-process demonstration: DDP steps on N processes, checked against one process that does it all.

Run it under torchrun (``mobilenet_edu.launch.torchrun(2, ["-m", "mobilenet_edu.ddp_demo"])`` from a notebook,
or ``torchrun --standalone --nproc-per-node=2 -m mobilenet_edu.ddp_demo`` from a terminal). Every rank trains
``--steps`` SGD steps on its share of each global batch of ``--batch`` random images through
DistributedDataParallel, and beside it a private copy of the network on the whole batch, as a single process
would. A communication hook counts the all-reduces that DDP starts and the gradient values each one carries.
Rank 0 prints one line per step and two about the weights; every check line ends in True or False.
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from .model import MobileNetV1


def flat(net: nn.Module) -> torch.Tensor:
    """All of the network's parameters as one vector."""
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def main(steps: int = 2, batch: int = 16) -> None:
    dist.init_process_group("gloo")  # torchrun put the rank, the world size and the meeting point in the environment
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # the same network and the same batches on every rank
    net = MobileNetV1(num_classes=10, width=0.5, small_input=True).eval()  # eval: BatchNorm's statistics fixed
    alone = copy.deepcopy(net)  # a one-process copy that trains on the whole batch
    ddp = nn.parallel.DistributedDataParallel(net)
    sizes: list[list[int]] = []

    def counting_allreduce(group, bucket):
        sizes[-1].append(bucket.buffer().numel())  # how many gradient values this all-reduce carries
        return default_hooks.allreduce_hook(group, bucket)  # PyTorch's own: divide by world, sum over the ranks

    ddp.register_comm_hook(None, counting_allreduce)
    opt, opt_alone = (torch.optim.SGD(m.parameters(), lr=0.1) for m in (net, alone))
    agree = []
    for _ in range(steps):
        x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))  # the same on every rank
        mine = torch.arange(rank, batch, world)  # this rank's share of the global batch
        sizes.append([])
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x[mine]), y[mine]).backward()  # the all-reduces run inside backward()
        opt_alone.zero_grad()
        nn.functional.cross_entropy(alone(x), y).backward()
        agree.append(all(torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6)
                         for p, q in zip(net.parameters(), alone.parameters())))
        opt.step()
        opt_alone.step()

    everyone = [torch.empty_like(flat(net)) for _ in range(world)]
    dist.all_gather(everyone, flat(net))  # rank 0 collects every rank's weights to compare them
    if rank == 0:
        print(f"{world} processes (gloo), rank 0 trains on images {mine.tolist()} of each batch of {batch}")
        for step, carried in enumerate(sizes):
            print(f"step {step + 1}: {len(carried)} all-reduce(s) carrying {' + '.join(f'{s:,}' for s in carried)}"
                  f" gradient values; averaged gradient == one process's on all {batch} images: {agree[step]}")
        print(f"after {steps} steps the weights on all {world} ranks are identical: "
              f"{all(torch.equal(w, flat(net)) for w in everyone)}")
        print("...and equal to the one-process copy's (max |difference| < 1e-5):",
              (flat(net) - flat(alone)).abs().max().item() < 1e-5)
    dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="SGD steps (default 2)")
    parser.add_argument("--batch", type=int, default=16, help="images in each global batch (default 16)")
    args = parser.parse_args()
    main(args.steps, args.batch)
