"""Run under torchrun by test_distributed.py: rank 1 dies (SIGKILL) in the middle of its first epoch."""

import os
import signal
import sys

import torch

from mobilenet_edu import data
from mobilenet_edu.engine import TrainConfig, dist_cleanup, train

out = sys.argv[1]
torch.set_num_threads(1)
orig_iter = data.TensorBatches.__iter__


def dying_iter(self):
    for i, b in enumerate(orig_iter(self)):
        if self.train and self.rank == 1 and i == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        yield b


data.TensorBatches.__iter__ = dying_iter
train(TrainConfig(data="synthetic", width=0.25, batch_size=8, epochs=2, out=out, tta=False, lr=0.05,
                  synthetic_size=256), progress=False)
dist_cleanup()
