"""Training and evaluation loops, learning-rate schedule, distributed set-up.

One loop serves one process and many: under ``torchrun`` (RANK/WORLD_SIZE in the environment) the model
is wrapped in DistributedDataParallel, every process trains on its own shard of each epoch, the global
batch is ``batch_size * world_size``, and only rank 0 shows progress and writes files.
"""

from __future__ import annotations

import copy
import csv
import ctypes
import ctypes.util
import datetime
import itertools
import math
import os
import platform
import random
import statistics
import time
import types
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from .checkpoint import load_checkpoint, load_state_checked, read_weights, save_checkpoint, save_weights
from .data import Data, build_data, ensure_cifar10
from .errors import MobileNetError
from .model import MobileNetV1, min_input
from .profile import profile
from .settings import data_root

CKPT_NAME = "ckpt.pt"


@dataclass
class TrainConfig:
    data: str = "cifar10"
    data_dir: str | None = None
    width: float = 1.0
    small_input: bool | None = None  # None: True for 32x32 data sets (CIFAR, synthetic), else False
    resolution: int = 224
    act: str = "relu"
    dropout: float = 0.0
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.2
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup: float = 0.25  # fraction of all steps spent warming up (linear) before the linear decay
    schedule: str = "onecycle"  # onecycle | cosine | exp (the paper's RMSprop style: x0.94 every 2 epochs)
    cutout: int = 0
    # Progressive resizing: every epoch but the last full_res_epochs trains on images shrunk to low_res px (cheap:
    # 0.6-0.75x the time of a 32 px epoch at 24 px, measured on 2 cores); the last ones, and every evaluation, are
    # at full size.
    low_res: int = 0
    full_res_epochs: int = 0
    val_split: int = 0
    tta: bool = True
    out: str = "runs/train"
    resume: bool = False
    seed: int = 0
    init: str | None = None
    threads: int | None = None
    workers: int = 0
    sync_bn: bool = False
    max_steps: int | None = None  # stop after this many steps in all (tests and benchmarks)
    limit_train_batches: int | None = None
    synthetic_size: int = 512
    freeze_bn: bool = False
    overwrite: bool = False
    subset: int | None = None  # train on this many images only, evaluate on a fifth as many (quick runs)
    recipe: str = "full"
    device: str | None = None  # None: cuda, then mps, then cpu (pick_device); or "cpu", "cuda:1", "mps"
    amp: bool = True  # mixed precision on CUDA (bf16 where supported, else fp16 with loss scaling)
    # bfloat16 for the pointwise convolutions on a CPU that has bf16 instructions (AVX512-BF16 or AMX); the
    # depthwise convolutions and the stem stay float32 (float32_thin_convs says why)
    cpu_amp: bool = False
    # Train for a time instead of a number of epochs: minutes from the start of training to the final weights
    # (probe, epochs, their evaluations and the final one). The run measures its speed, then plans the epochs
    # (plan_budget); None trains ``epochs``.
    time_budget: float | None = None
    extra: dict = field(default_factory=dict)


# The named recipes: each sets some of TrainConfig's fields; anything given explicitly overrides them.
RECIPES: dict[str, dict] = {
    # The dataclass defaults: stage 1 of the shipped cifar10 weights (89.13% in 20 epochs, 127 min on 2 CPU cores).
    "full": {},
    # Sized for one lesson on a laptop CPU (under 10 minutes of training on 2 cores): 16 epochs, all but the last 3
    # on images shrunk to 24 px, pointwise convolutions in bfloat16 where the CPU has bf16 instructions. Chosen on a
    # 5,000-image validation split, never on the test set (the trials are in the README).
    "classroom": dict(width=0.5, epochs=16, low_res=24, full_res_epochs=3, batch_size=256, lr=0.4, warmup=0.2,
                      cpu_amp=True, time_budget=10.0),
    # Seconds, same code path (one small-image epoch, one full-size): a few batches of a small subset (CI and
    # MOBILENET_EDU_QUICK=1).
    "quick": dict(width=0.5, epochs=2, low_res=24, full_res_epochs=1, batch_size=64, subset=512, tta=False),
}


def epoch_size(cfg: TrainConfig, epoch: int, full_size: int) -> int:
    """The training image size of ``epoch`` (0-based): ``low_res`` except in the last ``full_res_epochs`` epochs."""
    return cfg.low_res if cfg.low_res and epoch < cfg.epochs - cfg.full_res_epochs else full_size


def resized(batches, size: int):
    """``batches`` with every image shrunk to ``size`` x ``size`` (antialiased, as a smaller photo would look)."""
    for x, y in batches:
        if x.shape[-1] != size or x.shape[-2] != size:
            x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, y


def recipe(name: str = "full", **overrides) -> TrainConfig:
    """The TrainConfig of recipe ``name`` ("full", "classroom", "quick") with ``overrides`` applied."""
    if name not in RECIPES:
        raise MobileNetError(f"unknown recipe {name!r}; choose one of {', '.join(sorted(RECIPES))}")
    unknown = set(overrides) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise MobileNetError(f"not a training setting: {', '.join(sorted(unknown))}")
    if "epochs" in overrides and "time_budget" not in overrides:
        overrides = {**overrides, "time_budget": None}  # epochs asked for by number: no budget decides them
    return TrainConfig(**{**RECIPES[name], **overrides, "recipe": name})


# ----------------------------------------------------------------------------------------------------
# Distributed set-up


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to train on: ``prefer`` if given ("cpu", "cuda", "cuda:1", "mps"), else CUDA, then Apple's
    MPS, then the CPU."""
    if prefer:
        try:
            device = torch.device(prefer)
        except RuntimeError:
            raise MobileNetError(f"--device {prefer!r} is not a device name (cpu, cuda, cuda:N, mps)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise MobileNetError(f"--device {prefer}: no CUDA GPU is available here")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise MobileNetError(f"--device {prefer}: Apple's MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def dist_setup(prefer: str | None = None) -> tuple[int, int, int, torch.device]:
    """``(rank, local_rank, world, device)``; initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(prefer)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local)  # one GPU per process under torchrun
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        # Default backend selection: gloo for CPU tensors, NCCL for CUDA tensors.
        dist.init_process_group(timeout=datetime.timedelta(minutes=10))
    return rank, local, world, device


def dist_cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


# ----------------------------------------------------------------------------------------------------
# Optimiser and schedule


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv and linear weights only: none on BN, biases or depthwise filters.

    The paper (Sec. 3.2): "very little or no weight decay on the depthwise filters since there are so few
    parameters in them".
    """
    decay, no_decay = [], []
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            depthwise = isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
            if name == "weight" and isinstance(m, (nn.Conv2d, nn.Linear)) and not depthwise:
                decay.append(p)
            else:
                no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    if cfg.optimizer == "rmsprop":
        # The paper trained with RMSProp (TF defaults: decay 0.9, momentum 0.9, epsilon 1.0).
        return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=0.9, momentum=cfg.momentum, eps=1.0)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise MobileNetError(f"--optimizer must be sgd, rmsprop or adamw, got {cfg.optimizer!r}")


def lr_factor(step: int, total: int, warmup: float, schedule: str, steps_per_epoch: int) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based) of ``total``."""
    w = int(round(warmup * total))
    if step < w:  # linear warm-up from 10% of the peak
        return 0.1 + 0.9 * step / max(1, w)
    p = (step - w) / max(1, total - w)
    if schedule == "onecycle":
        return max(0.0, 1.0 - p)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * p))
    if schedule == "exp":
        return 0.94 ** ((step - w) / max(1, 2 * steps_per_epoch))
    raise MobileNetError(f"--schedule must be onecycle, cosine or exp, got {schedule!r}")


# ----------------------------------------------------------------------------------------------------
# Evaluation


@torch.no_grad()
def evaluate(model: nn.Module, batches, num_classes: int, tta: bool = False) -> dict:
    """Top-1/top-5, loss, per-class accuracy and the confusion matrix over ``batches``.

    ``tta=True`` averages the logits of the image and its mirror image (flip test-time augmentation).
    Counts are summed across processes, so under torchrun the result is the whole set's.
    """
    is_module = isinstance(model, nn.Module)
    was_training = is_module and model.training
    if is_module:
        model.eval()
    conf = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    top5 = torch.zeros(2, dtype=torch.float64)  # [top-5 hits, loss sum]
    k = min(5, num_classes)
    for x, y in batches:
        logits = model(x)
        if tta:
            logits = 0.5 * (logits + model(x.flip(3)))
        logits = logits.float().cpu()
        y = y.cpu()
        pred = logits.argmax(1)
        conf += torch.bincount(y * num_classes + pred, minlength=num_classes ** 2).view(num_classes, -1)
        top5[0] += (logits.topk(k, 1).indices == y[:, None]).any(1).sum()
        top5[1] += nn.functional.cross_entropy(logits, y, reduction="sum")
    all_reduce_sum(conf)
    all_reduce_sum(top5)
    if is_module:
        model.train(was_training)
    n = int(conf.sum())
    if n == 0:
        raise MobileNetError("the evaluation set is empty")
    per_class = (conf.diag() / conf.sum(1).clamp(min=1) * 100).tolist()
    return {"top1": float(conf.diag().sum() / n * 100), "top5": float(top5[0] / n * 100),
            "loss": float(top5[1] / n), "n": n, "per_class": per_class, "confusion": conf.long().tolist()}


# ----------------------------------------------------------------------------------------------------
# Time budget: train for minutes, not epochs (Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020: fit the
# schedule to the time there is). The run times a few steps, plans the epochs that fit, and trains that plan.

BUDGET_USE = 0.95  # the share of the budget a plan may fill; the rest absorbs a machine that slows down mid-run
PROBE_WARMUP, PROBE_STEPS, PROBE_EVAL_BATCHES = 2, 4, 2


@dataclass(frozen=True)
class Speed:
    """What ``measure_speed`` found: seconds per training step at each image size, seconds per evaluation of the
    whole evaluation set, and the seconds the probe itself took."""

    step_s: dict
    eval_s: float
    probe_s: float


@dataclass(frozen=True)
class Plan:
    """How a budget is spent: ``epochs`` in all, the last ``full_res_epochs`` at full size; ``seconds`` predicted."""

    epochs: int
    full_res_epochs: int
    seconds: float


def measure_speed(model: nn.Module, cfg: TrainConfig, data: Data, amp, sizes: list[int]) -> Speed:
    """Time training steps at each of ``sizes`` on a copy of ``model`` (with its own optimiser, on the first
    batches of epoch 1, through the same ``train_one_epoch`` as the run), and a few evaluation batches.

    The run's model, optimiser and random state are left as they were, so the probe changes what the run learns
    in nothing but the plan. The median of ``PROBE_STEPS`` steps after ``PROBE_WARMUP`` is kept."""
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        probe = copy.deepcopy(model).train()
        opt = make_optimizer(probe, cfg)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1)
        crit = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        scaler = torch.amp.GradScaler(next(probe.parameters()).device.type, enabled=amp == torch.float16)
        step_s = {}
        for size in sizes:
            data.train.set_epoch(0)
            stamps = [time.perf_counter()]
            batches = resized(itertools.islice(data.train, PROBE_WARMUP + PROBE_STEPS), size)
            train_one_epoch(probe, batches, opt, sched, crit, scaler, amp,
                            on_step=lambda *a, stamps=stamps: stamps.append(time.perf_counter()))
            gaps = [b - a for a, b in zip(stamps, stamps[1:])][PROBE_WARMUP:]
            if not gaps:
                raise MobileNetError(f"--time-budget: too few training batches to time (needs "
                                     f"{PROBE_WARMUP + 1} of {cfg.batch_size})")
            step_s[size] = statistics.median(gaps)
        probe.eval()
        stamps, batches = [], 0
        with torch.no_grad():
            for x, _ in itertools.islice(data.test, PROBE_EVAL_BATCHES + 1):
                t = time.perf_counter()
                probe(x).float().cpu()
                stamps.append(time.perf_counter() - t)
                batches += 1
        eval_s = statistics.median(stamps[1:] or stamps) * len(data.test)
    del probe, opt
    return Speed(step_s, eval_s, time.perf_counter() - t0)


def plan_budget(budget_s: float, speed: Speed, steps_per_epoch: int, low_res: int, full_size: int,
                full_share: float, final_evals: int) -> Plan:
    """The most epochs whose predicted time fits ``BUDGET_USE`` of the budget (the probe's time counted), with
    the recipe's share of full-size epochs (at least the last one); the final evaluation's passes counted too.
    Raises a MobileNetError naming the smallest budget that works here when not even one epoch fits."""
    left = budget_s * BUDGET_USE - speed.probe_s
    step_low = speed.step_s.get(low_res, 0.0) if low_res else 0.0
    step_full = speed.step_s[full_size]

    def plan(epochs: int) -> Plan:
        full = epochs if not low_res else min(epochs, max(1, round(epochs * full_share)))
        seconds = steps_per_epoch * ((epochs - full) * step_low + full * step_full) + \
            (epochs + final_evals) * speed.eval_s
        return Plan(epochs, full, seconds)

    best = plan(1)
    if best.seconds > left:
        least = (best.seconds + speed.probe_s) / BUDGET_USE / 60
        raise MobileNetError(f"--time-budget {budget_s / 60:g} min is too small: one epoch at full size with its "
                             f"evaluations takes about {best.seconds / 60:.1f} min at the measured speed; the "
                             f"smallest budget that works is {math.ceil(least * 10) / 10:g} min (the probe and the "
                             f"{1 - BUDGET_USE:.0%} margin included)")
    while best.epochs < 10_000:
        more = plan(best.epochs + 1)
        if more.seconds > left:
            break
        best = more
    return best


def describe_plan(budget_min: float, speed: Speed, plan: Plan, low_res: int, full_size: int) -> str:
    """The plan in one line, with what it was made from."""
    steps = ", ".join(f"{speed.step_s[s]:.3f} s a step at {s} px" for s in sorted(speed.step_s))
    low = (f", the first {plan.epochs - plan.full_res_epochs} at {low_res} px and the last "
           f"{plan.full_res_epochs} at {full_size} px" if low_res and plan.epochs > plan.full_res_epochs else "")
    return (f"time budget {budget_min:g} min: measured {steps}, {speed.eval_s:.1f} s an evaluation (probe "
            f"{speed.probe_s:.0f} s) -> plan {plan.epochs} epochs{low}, about {plan.seconds / 60:.1f} min")



# ----------------------------------------------------------------------------------------------------
# Training


def machine_info(device: torch.device, world: int) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "device": str(device),
            "world_size": world, "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def build_model(cfg: TrainConfig, num_classes: int, small: bool) -> MobileNetV1:
    if cfg.init:
        model = init_from(cfg.init, num_classes)
        if model.small_input != small:
            # Rebuild rather than patch the stem's stride, so feature_info (strides) stays true; the stem
            # stride changes no tensor, so the weights carry over as they are.
            rebuilt = MobileNetV1(**{**model.arch_args, "small_input": small})
            rebuilt.load_state_dict(model.state_dict())
            model = rebuilt
        return model
    return MobileNetV1(num_classes=num_classes, width=cfg.width, small_input=small, act=cfg.act,
                       dropout=cfg.dropout)


def init_from(path: str, num_classes: int) -> MobileNetV1:
    """Start from our own weights (safetensors + card) or a timm MobileNet v1 state dict (.pth/.safetensors)."""
    from .timm_import import from_timm

    p = Path(path)
    if not p.is_file():
        raise MobileNetError(f"--init: no such file {p}")
    if p.suffix == ".safetensors":
        try:
            state, card = read_weights(p)
        except MobileNetError:
            from safetensors.torch import load_file
            try:
                state, card = load_file(str(p)), None
            except Exception as e:
                raise MobileNetError(f"--init: cannot read {p}: {e}") from None
    else:
        state, card = load_checkpoint(p), None
        state = state.get("state_dict", state.get("model", state))
    if card is not None:
        from .checkpoint import model_from_card
        model = model_from_card(card)
        load_state_checked(model, state, f"--init {p}")
    else:
        model = from_timm(state)
    if model.num_classes != num_classes:
        model.reset_classifier(num_classes)
    return model


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(st["cuda"])
        except RuntimeError:
            pass  # a different number of GPUs: keep the fresh state


def _freeze_bn(model: nn.Module) -> None:
    """BatchNorm in eval mode: running statistics are used and not updated (fine-tuning with small batches)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def keep_freed_memory() -> bool:
    """Ask the C library's allocator (glibc, Linux) to keep freed memory for reuse instead of handing it back.

    By default glibc gives every block of 32 MiB or more back to the operating system when it is freed, and
    trims the top of the heap too; a CPU training step frees its activations and allocates them again in the
    next step, so each step page-faults the same memory back in (0.08-0.28 million faults a step in our
    measurements, and 1.03-1.26x the training speed when they are gone: measured on 2 cores with batch 256;
    ``mobilenet_edu.pagefaults`` measures it). After this call freed
    blocks stay with the process for reuse (the resident memory stays near its peak until the process
    ends). Returns False where it does not apply (no glibc: macOS, Windows, musl).
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    for limit in (1 << 30, 32 << 20):  # older glibc refuses a threshold above 32 MB
        if mallopt(m_mmap_threshold, limit) == 1:
            break
    else:
        return False
    return mallopt(m_trim_threshold, 1 << 30) == 1


def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions that the classroom recipe uses (x86: AVX512-BF16 or AMX). Other
    CPUs, and Arm ones (which this does not probe), train in float32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def amp_dtype(device: torch.device, enabled: bool = True, cpu: bool = False) -> torch.dtype | None:
    """The mixed-precision dtype: on CUDA bfloat16 where the GPU has it, else float16 (with loss scaling); on
    the CPU bfloat16 only when asked (``cpu=True``, the classroom recipe) and the CPU has bf16 instructions,
    with ``float32_thin_convs`` on the model; none on Apple's MPS (not measured there, so it keeps float32)."""
    if not enabled:
        return None
    if device.type == "cpu":
        return torch.bfloat16 if cpu and cpu_has_bf16() else None
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _float32_forward(self, x):
    """A convolution's forward in float32 even under CPU autocast (``float32_thin_convs`` installs it)."""
    if torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):  # restored on leaving the block, even after an exception
            return type(self).forward(self, x.float())
    return type(self).forward(self, x)


def float32_thin_convs(model: nn.Module) -> int:
    """Under CPU autocast, run the thin convolutions (one or a few input channels per filter: the depthwise ones
    and the 3-channel stem) in float32; returns how many. Their weights and state-dict names do not change.
    Measured on a 2-core AMD EPYC (AVX512-BF16): oneDNN's bf16 depthwise backward is many times slower than float32
    (6-47x per layer), so plain bf16 autocast halved the training speed, while bf16 pointwise convolutions with
    these in float32 trained 1.2x faster than float32 throughout (about 1.1x in whole epochs)."""
    n = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and (m.groups == m.in_channels > 1 or m.in_channels <= 4):
            m.forward = types.MethodType(_float32_forward, m)
            n += 1
    return n


def train_one_epoch(model, batches, optimizer, scheduler, loss_fn, scaler, amp=None, on_step=None) -> dict:
    """One pass over ``batches``: forward, loss, backward, optimiser step, learning-rate step.

    The model must already be in training mode. ``amp`` is a dtype for mixed precision (None: float32);
    ``scaler`` is a ``torch.amp.GradScaler`` (enabled only for float16). ``on_step(i, loss, acc)`` is called
    after every step with the running mean loss and accuracy, for progress displays.
    Returns the epoch's mean loss, accuracy (%) and number of images.
    """
    loss_sum, hits, seen = 0.0, 0, 0
    for i, (x, y) in enumerate(batches):
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            logits = model(x)
            loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        loss_sum += loss.item() * len(y)
        hits += (logits.argmax(1) == y).sum().item()
        seen += len(y)
        if on_step is not None:
            on_step(i, loss_sum / seen, hits / seen * 100)
    return {"loss": loss_sum / max(seen, 1), "acc": hits / max(seen, 1) * 100, "images": seen}


class TqdmProgress:
    """Progress of a run on the terminal: a bar per epoch and a line per epoch result (rank 0 only)."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.bar = enabled, None

    def start(self, cfg: TrainConfig, steps_per_epoch: int, header: str) -> None:
        self.cfg, self.steps = cfg, steps_per_epoch
        if self.enabled:
            print(header, flush=True)

    def epoch_start(self, epoch: int) -> None:
        from tqdm import tqdm

        self.t0 = time.time()
        self.bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", disable=not self.enabled,
                        dynamic_ncols=True, leave=True)

    def step(self, i: int, loss: float, acc: float, lr: float, images_per_s: float) -> None:
        if self.enabled and (i % 10 == 0 or i == self.steps - 1):
            self.bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.1f}", img_s=f"{images_per_s:.0f}", lr=f"{lr:.3g}")
        self.bar.update(1)

    def epoch_end(self, row: dict, split: str) -> None:
        self.bar.close()
        if self.enabled:
            self.bar.write(f"epoch {row['epoch']}: train loss {row['train_loss']:.3f} acc {row['train_acc']:.2f}% | "
                           f"{split} top1 {row['eval_top1']:.2f}% top5 {row['eval_top5']:.2f}% | "
                           f"{row['img_per_s']:.0f} img/s")

    def end(self, message: str) -> None:
        if self.enabled:
            print(message, flush=True)


def train(cfg: TrainConfig, progress=True, return_model: bool = False):
    """Train a model as ``cfg`` says; returns the final card (also written to ``cfg.out``).

    This is the bookkeeping around ``train_one_epoch``: data, model, optimiser and schedule; processes
    (torchrun); resume; the checkpoint after every epoch; metrics, the weights and their card at the end.
    ``progress``: True (a terminal bar), False (silent) or an object with TqdmProgress's methods (the
    notebook's live dashboard). With ``return_model=True`` returns ``(card, model)``; the card is ``{}``
    on ranks other than 0.
    """
    if cfg.epochs < 1:
        raise MobileNetError(f"--epochs must be >= 1, got {cfg.epochs}")
    if cfg.batch_size < 2:
        raise MobileNetError(f"--batch-size must be >= 2 (BatchNorm needs it), got {cfg.batch_size}")
    if not cfg.lr > 0:
        raise MobileNetError(f"--lr must be > 0, got {cfg.lr}")
    if cfg.low_res < 0 or (cfg.low_res > 0 and cfg.full_res_epochs < 1):
        raise MobileNetError("--low-res needs --full-res-epochs >= 1 (the last epochs train at full size, which the "
                             f"evaluation uses), got --low-res {cfg.low_res} --full-res-epochs {cfg.full_res_epochs}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rank, local, world, device = dist_setup(cfg.device)
    if device.type == "cpu":
        keep_freed_memory()
    if cfg.sync_bn and device.type != "cuda":
        raise MobileNetError("--sync-bn needs GPUs (SyncBatchNorm does not run on CPU tensors); drop it on CPU")
    main = rank == 0
    show = progress if not isinstance(progress, bool) else TqdmProgress(progress and main)
    if not main:
        show = TqdmProgress(False)
    out = Path(cfg.out)
    ckpt_path = out / CKPT_NAME
    held = [p.name for p in (ckpt_path, out / "weights.safetensors") if p.exists()]
    if held and not cfg.resume and not cfg.overwrite:
        raise MobileNetError(f"{out} already holds a run ({', '.join(held)}); continue it with --resume, "
                             "or pass --overwrite to replace it, or choose another --out")
    if main:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)

    if cfg.data == "cifar10" and world > 1:  # one download per machine, not one per process
        if local == 0:
            ensure_cifar10(data_root(cfg.data_dir))
        dist.barrier()
    small = cfg.small_input if cfg.small_input is not None else cfg.data in ("cifar10", "synthetic")
    data: Data = build_data(cfg.data, cfg.data_dir, cfg.batch_size, 500, small_input=small,
                            synthetic_size=cfg.synthetic_size,
                            resolution=cfg.resolution, val_split=cfg.val_split, seed=cfg.seed,
                            rank=rank, world=world, device=device, workers=cfg.workers, cutout=cfg.cutout,
                            subset=cfg.subset, verbose=progress is True and main)
    num_classes = len(data.classes)
    model = build_model(cfg, num_classes, small).to(device).to(memory_format=torch.channels_last)
    if cfg.low_res:
        least = min_input(model.small_input)
        if not least <= cfg.low_res < data.input_size:
            raise MobileNetError(f"--low-res must be from {least} to {data.input_size - 1} px for this model and "
                                 f"data (the full size is {data.input_size}), got {cfg.low_res}")
    if cfg.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    opt = make_optimizer(model, cfg)
    steps_per_epoch = len(data.train)
    if cfg.limit_train_batches:
        steps_per_epoch = min(steps_per_epoch, cfg.limit_train_batches)
    if steps_per_epoch < 1:
        raise MobileNetError(f"not enough training images for one batch of {cfg.batch_size} x {world} processes")
    amp = amp_dtype(device, cfg.amp, cpu=cfg.cpu_amp)
    if amp is not None and device.type == "cpu":
        float32_thin_convs(model)
    elif device.type == "cpu" and cfg.amp and cfg.cpu_amp and main and progress is not False:
        cost = ("a step takes about 1.1x as long, so the time budget plans fewer epochs" if cfg.time_budget
                else "about 1.1x the time of the classroom recipe's measured run")
        print("--cpu-amp: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX), so it trains in float32 "
              f"({cost})", flush=True)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)

    ck = None
    if cfg.resume:
        # Rank 0 reads the checkpoint and hands it to the others, so only its file system needs it.
        ck = load_checkpoint(ckpt_path) if main and ckpt_path.is_file() else None
        if world > 1:
            box = [ck]
            dist.broadcast_object_list(box, src=0)
            ck = box[0]
    t_budget = time.time()
    budget = (ck or {}).get("budget")  # a resumed run keeps the plan it started with
    if budget is None and cfg.time_budget and ck is None:
        sizes = [cfg.low_res, data.input_size] if cfg.low_res else [data.input_size]
        speed = measure_speed(model, cfg, data, amp, sizes)
        plan = plan_budget(cfg.time_budget * 60, speed, steps_per_epoch, cfg.low_res, data.input_size,
                           cfg.full_res_epochs / cfg.epochs, 1 + 2 * cfg.tta)
        budget = {"minutes": cfg.time_budget, "measured": {"step_s": {str(k): v for k, v in speed.step_s.items()},
                  "eval_s": speed.eval_s, "probe_s": speed.probe_s}, "plan": asdict(plan),
                  "line": describe_plan(cfg.time_budget, speed, plan, cfg.low_res, data.input_size)}
        if world > 1:  # every process trains rank 0's plan
            box = [budget]
            dist.broadcast_object_list(box, src=0)
            budget = box[0]
        if main and progress is not False:
            print(budget["line"], flush=True)
    if budget is not None:
        cfg = replace(cfg, epochs=budget["plan"]["epochs"], full_res_epochs=budget["plan"]["full_res_epochs"],
                      time_budget=budget["minutes"])
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total, cfg.warmup, cfg.schedule, steps_per_epoch))

    start_epoch, elapsed_before, history = 0, 0.0, []
    if ck is not None:
        load_state_checked(model, ck["model"], f"checkpoint {ckpt_path}")
        # The checkpoint brings back the momentum buffers; the settings (--lr, --weight-decay, ...) are this
        # run's, so a resumed run with a rescaled --lr really uses it (a state dict would restore the old ones).
        settings = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        opt.load_state_dict(ck["optimizer"])
        for g, own in zip(opt.param_groups, settings):
            g.update(own)
        start_epoch, elapsed_before, history = ck["epoch"], ck.get("elapsed", 0.0), ck.get("history", [])
        # The schedule is a function of the step, so this run's lr (sched.base_lrs) and its steps per epoch (they
        # depend on the world size: the global batch) place it; the checkpoint's scheduler state is not needed.
        start_step = start_epoch * steps_per_epoch
        sched.last_epoch = start_step
        for g, base in zip(opt.param_groups, sched.base_lrs):
            g["lr"] = base * lr_factor(start_step, total, cfg.warmup, cfg.schedule, steps_per_epoch)
        if ck.get("world_size", 1) == world:
            _set_rng_state(ck["rng"])
        elif main and progress is not False:
            print(f"resuming a {ck.get('world_size', 1)}-process run under {world} process(es)", flush=True)
        if main and progress is not False:
            print(f"resumed from {ckpt_path} after epoch {start_epoch} of {cfg.epochs}", flush=True)
    elif cfg.resume and main and progress is not False:
        print(f"--resume: no checkpoint in {out}; starting from scratch", flush=True)

    split = data.info.get("split", "test")
    low = (f", all but the last {cfg.full_res_epochs} on {cfg.low_res} px images"
           if cfg.low_res and cfg.epochs > cfg.full_res_epochs else "")
    show.start(cfg, steps_per_epoch,
               f"{data.name}: {data.info.get('train_images')} training images, {data.info.get('test_images')} "
               f"{split} images, {num_classes} classes, input {data.input_size}px | "
               f"MobileNetV1(width={model.width:g}{', small_input' if model.small_input else ''}) | "
               f"global batch {cfg.batch_size * world} = {cfg.batch_size} x {world} process(es) on {device}"
               f"{f' ({amp})'.replace('torch.', '') if amp else ''} | "
               f"{cfg.optimizer} lr {cfg.lr:g} {cfg.schedule}, {cfg.epochs} epochs{low}")
    ddp = model
    if world > 1:
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    crit = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    writer = None
    if main:
        try:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(out / "tb"))
        except ImportError:
            writer = None
    machine = machine_info(device, world)
    t_start = time.time()
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break
        data.train.set_epoch(epoch)
        ddp.train()
        if cfg.freeze_bn:
            _freeze_bn(model)
        n = steps_per_epoch if cfg.max_steps is None else min(steps_per_epoch, cfg.max_steps - step)
        show.epoch_start(epoch)
        t0 = time.time()

        def on_step(i, loss, acc, t0=t0):
            show.step(i, loss, acc, sched.get_last_lr()[0], (i + 1) * cfg.batch_size * world / (time.time() - t0))

        size = epoch_size(cfg, epoch, data.input_size)
        batches = resized(itertools.islice(data.train, n), size)  # full-size batches pass through unchanged
        r = train_one_epoch(ddp, batches, opt, sched, crit, scaler, amp, on_step)
        step += n
        train_time = time.time() - t0
        stats = torch.tensor([r["loss"] * r["images"], r["acc"] / 100 * r["images"], r["images"]],
                             dtype=torch.float64, device=device)
        all_reduce_sum(stats)
        if world > 1:  # DDP copies rank 0's buffers at the START of each forward, so the last one left every rank
            for b in model.buffers():  # its own BatchNorm statistics: every rank evaluates the network rank 0 saves
                dist.broadcast(b, 0)
        ev = evaluate(model, data.test, num_classes)
        row = {"epoch": epoch + 1, "train_loss": float(stats[0] / stats[2]),
               "train_acc": float(stats[1] / stats[2] * 100),
               f"{split}_loss": ev["loss"], "eval_top1": ev["top1"], "eval_top5": ev["top5"],
               "lr": sched.get_last_lr()[0], "train_size": size, "epoch_time_s": train_time,
               "img_per_s": float(stats[2]) / max(train_time, 1e-9),
               "elapsed_s": elapsed_before + time.time() - t_start}
        history.append(row)
        show.epoch_end(row, split)
        if main:
            _write_metrics(out / "metrics.csv", history)
            if writer is not None:
                for k, v in row.items():
                    if k != "epoch":
                        writer.add_scalar(k, v, epoch + 1)
                writer.flush()
        whole_epoch = cfg.max_steps is None or step < cfg.max_steps or step % steps_per_epoch == 0
        if main and whole_epoch:  # a run cut short by --max-steps mid-epoch leaves no resumable state
            save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(),
                             "rng": _rng_state(), "epoch": epoch + 1,
                             "elapsed": row["elapsed_s"], "history": history, "world_size": world,
                             "config": _plain(asdict(cfg)), "budget": budget}, ckpt_path)
        if world > 1:
            dist.barrier()

    # Final evaluation: single view (the headline figure) and flip-TTA beside it.
    final = evaluate(model, data.test, num_classes)
    final_tta = evaluate(model, data.test, num_classes, tta=True) if cfg.tta else None
    wall = elapsed_before + time.time() - t_start
    card = None
    if main:
        prof = profile(MobileNetV1(**model.arch_args), data.input_size)
        card = {
            "arch": model.arch_args,
            "mean": list(data.mean), "std": list(data.std), "input_size": data.input_size,
            "classes": data.classes, "dataset": data.name,
            "eval_split": split,
            "metrics": {"top1": round(final["top1"], 2), "top5": round(final["top5"], 2), "n": final["n"],
                        **({"top1_flip_tta": round(final_tta["top1"], 2)} if final_tta else {})},
            "recipe": _plain(asdict(cfg)),
            "epochs_done": len(history),
            "skipped_files": data.skipped,
            "wall_time_s": round(wall, 1),
            "train_time_s": round(sum(r["epoch_time_s"] for r in history), 1),
            "history": history,
            "params": prof["params"], "macs": prof["macs"],
            "machine": machine,
            "amp": str(amp).replace("torch.", "") if amp else None,  # the mixed-precision dtype the run used
            # the time budget, what the probe measured and the plan it made (None: a fixed number of epochs)
            "budget": None if budget is None else {**budget,
                                                   "used_s": round(elapsed_before + time.time() - t_budget, 1)},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        save_weights(model, out / "weights.safetensors", card)
        if history:
            try:
                from .plots import plot_curves
                plot_curves(history, out / "curves.png")
            except ImportError:
                pass
        if writer is not None:
            writer.close()
        msg = f"final {split} top-1 {final['top1']:.2f}% top-5 {final['top5']:.2f}%"
        if final_tta:
            msg += f" (flip-TTA top-1 {final_tta['top1']:.2f}%)"
        if data.skipped:
            msg += f"; skipped {data.skipped} unreadable image file(s)"
        show.end(f"{msg}; wall {wall / 60:.1f} min; weights: {out / 'weights.safetensors'}")
    if world > 1:
        dist.barrier()
    return (card or {}, model) if return_model else (card or {})


def _plain(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool, type(None), list, dict))}


def _write_metrics(path: Path, rows: list[dict]) -> None:
    from .checkpoint import atomic_write

    keys = list(dict.fromkeys(k for r in rows for k in r))

    def w(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=keys)
            wr.writeheader()
            wr.writerows(rows)

    atomic_write(path, w)
