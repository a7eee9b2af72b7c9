"""Dropout with cheap random masks, for training on a CPU (``training.dropout_masks: fast``).

torch's CPU dropout draws one random float per element (``bernoulli_``); for the student that was 21% of a training
step's CPU time (fp32, ``benchmarks/train_step.py --profile``), most of it on the attention probabilities
(batch x heads x length x length per layer). Here one 64-bit random integer gives the masks of four elements: it is
split into 16-bit lanes and an element is kept when its lane's low 15 bits are at least ``round(p * 2**15)``.

That is the same per-element Bernoulli keep decision as torch's, with two stated differences: the rate is rounded to
a multiple of 2**-15 (|p_used - p| <= 1.5e-5; kept values are scaled by 1 / (1 - p_used), so the expectation is
unchanged), and the random stream differs (seeded by the same generator, reproducible, but not torch's masks).
``dropout_masks: torch`` keeps torch's dropout.

Attention dropout happens inside the attention function, so ``use_fast_dropout`` also switches the model to
``fast_dropout_attention``: the eager attention of transformers' BERT with this dropout while training, and SDPA
(whose fused CPU kernel has no dropout to replace) when the dropout is 0, i.e. in eval mode.
"""

from __future__ import annotations

import torch
from torch import nn

LANE_BITS = 15  # the low bits of a 16-bit lane; the sign bit is not used (int64 ``random_`` leaves it 0 in one lane)
LANE_VALUES = 1 << LANE_BITS
ATTENTION = "margin_fast_dropout"


def rounded_rate(p: float) -> float:
    """The dropout rate actually used for ``p``: a multiple of 2**-15."""
    return round(p * LANE_VALUES) / LANE_VALUES


def keep_mask(shape: torch.Size, p: float, device: torch.device, generator: torch.Generator | None = None
              ) -> torch.Tensor:
    """A bool mask of ``shape``, each element True with probability 1 - ``rounded_rate(p)``, independently."""
    count = shape.numel()
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_(generator=generator)
    lanes = words.view(torch.int16)[:count].view(shape)
    return torch.bitwise_and(lanes, LANE_VALUES - 1) >= round(p * LANE_VALUES)


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``nn.functional.dropout(x, p, training)`` with a ``keep_mask``: x / (1 - p_used) where kept, else 0."""
    if not training or p == 0.0:
        return x
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {p}")
    scale = 1.0 / (1.0 - rounded_rate(p))
    return torch.where(keep_mask(x.shape, p, x.device), x * scale, 0.0)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` whose masks come from ``keep_mask``; same ``p``, same eval behaviour (identity)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def fast_dropout_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                           **kwargs):
    """softmax(Q K^T * scaling + mask) V with ``fast_dropout`` on the probabilities (transformers' eager attention);
    SDPA when ``dropout`` is 0. Returns (output [B, L, heads, d_head], probabilities or None) like transformers'."""
    if dropout == 0.0:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=0.0,
                                      **kwargs)
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None and attention_mask.dtype == torch.bool:  # SDPA's mask: True where a key may be seen
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    elif attention_mask is not None:  # an additive mask (0 or a large negative number)
        scores = scores + attention_mask
    probabilities = fast_dropout(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(probabilities, value).transpose(1, 2).contiguous(), probabilities


def use_fast_dropout(model: nn.Module) -> nn.Module:
    """Swap every ``nn.Dropout`` of ``model`` for a ``FastDropout`` of the same rate and, for a model built on
    transformers' attention interface, its attention for ``fast_dropout_attention`` (a model with attention code of
    its own applies its dropout module, now a ``FastDropout``, itself). Weights are untouched; the saved model loads
    anywhere (the attention choice is not written to its config)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p))
    can_set = getattr(model, "_can_set_attn_implementation", None)
    if can_set is not None and can_set() and model.config._attn_implementation in ("sdpa", "eager"):
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(ATTENTION, fast_dropout_attention)
        AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # the masks that SDPA gets, in both modes
        model.set_attn_implementation(ATTENTION)
    return model
