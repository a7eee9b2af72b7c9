"""fp16 loss scaling on CUDA, and what a non-finite loss means with and without it.

With fp16 autocast the GradScaler multiplies the loss before backward. When the scaled gradients overflow (inf/NaN),
``scaler.step`` skips the optimizer step and ``scaler.update`` halves the scale: mixed precision recovers from an
overflow by skipping that step, as the original (Lightning, 16-bit) training did. A non-finite loss gives non-finite
gradients, so it is skipped the same way; the trainer counts skipped steps in its log instead of stopping.
Without a scaler (fp32, bf16, or any CPU run) nothing would skip the step and a NaN would reach the weights, so a
non-finite loss stops the job. A skipped step still counts as a step: its batch is consumed and the learning-rate
schedule advances, so the batch plan and the schedule do not depend on where overflows happened.
"""

from __future__ import annotations

import torch


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Enabled for fp16 on CUDA (``auto`` is fp16 there), a no-op otherwise."""
    return torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and precision in ("fp16", "auto"))


def check_loss(loss: torch.Tensor, step: int, scaler: torch.amp.GradScaler) -> None:
    """Raise for a non-finite loss at ``step`` unless ``scaler`` is enabled (it then skips the step)."""
    if scaler.is_enabled() or torch.isfinite(loss):
        return
    raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}; "
                             "lower training.learning_rate or use training.precision: fp32")


def scaled_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> bool:
    """Backward, optimizer step and scale update; True when the scaler skipped the optimizer step. A skip is the one
    case in which ``update`` lowers the scale (it raises it only after ``growth_interval`` good steps)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    return scaler.is_enabled() and scaler.get_scale() < scale
