"""Which triples a global step trains on: the batch order is a pure function of seed, epoch and step, so a resumed job
sees the same batches.

Two batchings (``TrainConfig.batching``):

- ``random``: each epoch is a seeded permutation cut into batches (the paper's shuffled batches);
- ``clustered``: contextual batches (Morris & Rush 2024, "Contextual Document Embeddings"): every batch is filled from
  one cluster of similar training examples (``margin_retrieval.training.clustering``), so that the other examples of a
  batch, and thus the in-batch negatives, are on the same topic.
"""

from __future__ import annotations

import abc
import math
from typing import Callable, Sequence

import numpy as np
import torch

from margin_retrieval.workflow.config import Batching
from margin_retrieval.training.config import TrainConfig

BatchPlan = Callable[[int], list[int]]


def total_steps(n_triples: int, config: TrainConfig) -> int:
    steps = config.max_epochs * math.ceil(n_triples / config.batch_size)
    return min(steps, config.max_steps) if config.max_steps else steps


def epoch_seed(seed: int, epoch: int) -> int:
    """The generator seed of one epoch. ``seed + epoch`` gave seed 1's first epoch to seed 0's second, so seeds were
    not independent over several epochs; later epochs draw their seed from ``SeedSequence((seed, epoch))`` instead
    (torch's CPU generator keeps only 32 bits, so no bit packing). Epoch 0 keeps the run's seed, as before."""
    if seed < 0:
        raise ValueError(f"training seed {seed} is negative")
    return seed if epoch == 0 else int(np.random.SeedSequence((seed, epoch)).generate_state(1)[0])


def epoch_order(n_triples: int, seed: int, epoch: int) -> np.ndarray:
    """The seeded permutation of one epoch's triples. Kept as int32 while indices fit: an MS MARCO epoch of tens of
    millions of triples then holds half the memory of torch's int64 permutation."""
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    order = torch.randperm(n_triples, generator=generator).numpy()
    return order.astype(np.int32) if n_triples < 2**31 else order


def clustered_epoch(clusters: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch, each filled from one cluster as far as the cluster sizes allow.

    Each cluster's members are shuffled (seeded by ``epoch_seed(seed, epoch)``) and cut into full batches. What is
    left of each cluster (fewer than ``batch_size`` triples) is concatenated in cluster-id order and cut into batches
    as well: the clustering numbers clusters along a nearest-centroid chain, so a packed leftover batch spans
    neighbouring clusters.
    Every triple appears exactly once, and the epoch has ``ceil(n / B)`` batches like a random epoch: F full cluster
    batches leave L = n - F * B leftovers, which fill ceil(L / B) batches, and F + ceil(L / B) = ceil(n / B). The
    batches are shuffled; the one partial batch, if any, comes last, as in a random epoch.
    """
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    members: dict[int, list[int]] = {}
    for index, cluster in enumerate(clusters):
        members.setdefault(int(cluster), []).append(index)
    batches, leftovers = [], []
    for cluster in sorted(members):
        indices = members[cluster]
        shuffled = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
        n_full = len(shuffled) // batch_size * batch_size
        batches += [shuffled[start : start + batch_size] for start in range(0, n_full, batch_size)]
        leftovers += shuffled[n_full:]
    batches += [leftovers[start : start + batch_size] for start in range(0, len(leftovers), batch_size)]
    partial = [batches.pop()] if batches and len(batches[-1]) < batch_size else []
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order] + partial


class EpochBatches(abc.ABC):
    """``step -> triple indices`` that keeps the current epoch's plan: an epoch is built once, when a step enters it,
    so a step costs O(batch) even with tens of millions of triples. The plan is a pure function of seed and epoch, so
    a plan built fresh at any step (a resumed job) gives the batches of one that walked there."""

    def __init__(self, n_triples: int, config: TrainConfig):
        self.config = config
        self.per_epoch = math.ceil(n_triples / config.batch_size)
        self._epoch: int | None = None
        self._plan = None

    def __call__(self, step: int) -> list[int]:
        epoch, position = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._plan = self.build(epoch)
            self._epoch = epoch
        return self.batch(self._plan, position)

    @abc.abstractmethod
    def build(self, epoch: int):
        """The plan of one epoch."""

    @abc.abstractmethod
    def batch(self, plan, position: int) -> list[int]:
        """The triple indices of the ``position``-th batch of an epoch's plan."""


class RandomBatches(EpochBatches):
    """Random batching: the epoch's seeded permutation (``epoch_order``) cut into batches."""

    def __init__(self, n_triples: int, config: TrainConfig):
        super().__init__(n_triples, config)
        self.n_triples = n_triples

    def build(self, epoch: int) -> np.ndarray:
        return epoch_order(self.n_triples, self.config.seed, epoch)

    def batch(self, plan: np.ndarray, position: int) -> list[int]:
        size = self.config.batch_size
        return plan[position * size : (position + 1) * size].tolist()


class ClusteredBatches(EpochBatches):
    """Clustered batching: the batches of ``clustered_epoch``."""

    def __init__(self, clusters: Sequence[int], config: TrainConfig):
        self.clusters = list(clusters)
        super().__init__(len(self.clusters), config)

    def build(self, epoch: int) -> list[list[int]]:
        return clustered_epoch(self.clusters, self.config.batch_size, self.config.seed, epoch)

    def batch(self, plan: list[list[int]], position: int) -> list[int]:
        return list(plan[position])


def batch_plan(n_triples: int, config: TrainConfig, clusters: Sequence[int] | None = None) -> BatchPlan:
    """The ``step -> triple indices`` function of ``config.batching``; clustered batching needs a cluster per triple."""
    if config.batching == Batching.RANDOM:
        return RandomBatches(n_triples, config)
    if clusters is None or len(clusters) != n_triples:
        got = "none" if clusters is None else len(clusters)
        raise ValueError(f"clustered batching needs one cluster id per training triple ({n_triples}), got {got}")
    return ClusteredBatches(clusters, config)
