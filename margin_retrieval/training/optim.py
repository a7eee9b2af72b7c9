"""Optimizer and learning-rate schedule of a training run."""

from __future__ import annotations

import logging

import torch

from margin_retrieval.workflow.config import Optimizer
from margin_retrieval.training.config import TrainConfig

log = logging.getLogger(__name__)

BITSANDBYTES = "bitsandbytes==0.50.2"  # the pin of envs/torch.yaml; CUDA-only, so not in requirements.txt


def optimizer_class(choice: Optimizer, device: torch.device) -> tuple[type[torch.optim.Optimizer], dict]:
    """The class and options of ``training.optimizer`` on ``device``.

    ``adamw8bit`` on CUDA is bitsandbytes' AdamW8bit, and a missing bitsandbytes is an error: falling back would
    silently train the paper's runs with another optimizer. bitsandbytes' 8-bit states are CUDA kernels, so on a CPU
    ``adamw8bit`` trains with torch's AdamW (``build_optimizer`` logs a warning). torch's AdamW runs fused (one kernel
    over all parameters): on a 2-core CPU it measured ~9x faster per step than the default per-parameter loop, with
    parameters within 3e-8 of the loop's after a step (float rounding only).
    """
    if choice == Optimizer.ADAMW8BIT and device.type == "cuda":
        try:
            import bitsandbytes
        except ImportError:
            raise ImportError(f"training.optimizer adamw8bit needs the package bitsandbytes on CUDA, which is not "
                              f"installed: pip install {BITSANDBYTES} (envs/torch.yaml has it), or set "
                              "training.optimizer: adamw") from None
        return bitsandbytes.optim.AdamW8bit, {}
    return torch.optim.AdamW, {"fused": True}


def build_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device):
    """``training.optimizer`` without weight decay on LayerNorm and biases, and the warmup + exponential schedule."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer_type, options = optimizer_class(config.optimizer, device)
    if config.optimizer == Optimizer.ADAMW8BIT and device.type != "cuda":
        log.warning("training.optimizer adamw8bit: bitsandbytes' 8-bit AdamW needs CUDA; training on the %s with "
                    "torch's AdamW", device.type)
    optimizer = optimizer_type(groups, lr=config.learning_rate, **options)

    def factor(step: int) -> float:
        warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        return warmup * config.lr_gamma**step

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
