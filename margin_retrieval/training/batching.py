"""Which triples a global step trains on: the batch order is a pure function of seed, epoch and step, so a resumed job
sees the same batches."""

from __future__ import annotations

import math

import torch

from margin_retrieval.training.config import TrainConfig


def total_steps(n_triples: int, config: TrainConfig) -> int:
    steps = config.max_epochs * math.ceil(n_triples / config.batch_size)
    return min(steps, config.max_steps) if config.max_steps else steps


def batch_indices(n_triples: int, config: TrainConfig, step: int) -> list[int]:
    """The triples of a global step: each epoch is a seeded permutation, so a resumed job sees the same batches."""
    per_epoch = math.ceil(n_triples / config.batch_size)
    epoch, position = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(config.seed + epoch)
    order = torch.randperm(n_triples, generator=generator)
    return order[position * config.batch_size : (position + 1) * config.batch_size].tolist()
