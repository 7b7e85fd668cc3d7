"""Run under torchrun by test_distributed.py: trains a few steps and saves what each rank ended with."""

import os
import sys

import torch

from mobilenet_edu.data import build_data
from mobilenet_edu.engine import TrainConfig, dist_cleanup, train

out, steps = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
cfg = TrainConfig(data="synthetic", width=0.25, batch_size=8, epochs=1, max_steps=steps, out=out, tta=False,
                  lr=0.05, synthetic_size=256)
card, model = train(cfg, progress=False, return_model=True)
rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
buffers = torch.cat([b.detach().double().flatten() for b in model.buffers()])  # BatchNorm's running statistics
d = build_data("synthetic", batch_size=8, rank=rank, world=world, synthetic_size=256)
d.train.set_epoch(0)
torch.save({"flat": flat, "buffers": buffers, "indices": d.train.indices()}, os.path.join(out, f"rank{rank}.pt"))
dist_cleanup()
