"""Batching: random batches unchanged; clustered (contextual) batches hold one topic, lose and repeat nothing, and are
a pure function of seed and epoch; the clustering of training examples behind them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from margin_retrieval.jobs.io import save_embeddings, write_tsv
from margin_retrieval.training.batching import (
    ClusteredBatches, RandomBatches, batch_plan, clustered_epoch, epoch_seed, total_steps,
)
from margin_retrieval.training.clustering import (cluster_examples, cluster_statistics, example_embeddings,
                                                  lookup_embeddings, n_clusters_for)
from margin_retrieval.training.config import TrainConfig
from margin_retrieval.training.data import read_clusters
from tests.configs import settings

DIM = 16


def two_topic_examples(per_topic: int = 16, seed: int = 0):
    """Triples of two topics with disjoint "vocabularies": topic A's query and document embeddings live on dimensions
    0-7, topic B's on 8-15 (plus small noise on all). Returns (triples, query embeddings, doc embeddings, topic)."""
    rng = np.random.default_rng(seed)
    triples, query_emb, doc_emb, topic = [], {}, {}, []
    for t in (0, 1):
        for i in range(per_topic):
            q, p, n = f"q{t}-{i}", f"p{t}-{i}", f"n{t}-{i}"
            for name, table in ((q, query_emb), (p, doc_emb), (n, doc_emb)):
                vector = rng.normal(0, 0.05, DIM)
                vector[t * 8 : (t + 1) * 8] += rng.uniform(0.5, 1.0, 8)
                table[name] = vector.astype(np.float32)
            triples.append((q, p, n))
            topic.append(t)
    return triples, query_emb, doc_emb, topic


def config(**overrides) -> TrainConfig:
    """The schema's training defaults for an InfoNCE run; ``overrides`` replace any field."""
    training = settings().training
    base = TrainConfig.from_config(training, {"objective": "infonce", "in_batch": False, "tau": None,
                                              "batching": "random", "seed": 7, "lr": training.learning_rate})
    return dataclasses.replace(base, **{"batch_size": 4, "max_epochs": 3, **overrides})


def test_clustered_batches_hold_one_topic_each_and_random_batches_mix_them():
    triples, query_emb, doc_emb, topic = two_topic_examples()
    embeddings = example_embeddings(triples, query_emb, doc_emb)
    clusters = cluster_examples(embeddings, batch_size=4, seed=0)
    assert clusters.tolist() == cluster_examples(embeddings, batch_size=4, seed=0).tolist()  # seeded: cacheable
    assert len(set(clusters.tolist())) == n_clusters_for(len(triples), 4) == 8
    cfg = config(batching="clustered")
    plan = batch_plan(len(triples), cfg, clusters.tolist())
    per_epoch = math.ceil(len(triples) / cfg.batch_size)
    clustered = [{topic[i] for i in plan(step)} for step in range(2 * per_epoch)]
    assert all(len(topics) == 1 for topics in clustered), clustered
    random_plan = batch_plan(len(triples), config(batching="random"))
    mixed = [len({topic[i] for i in random_plan(step)}) == 2 for step in range(2 * per_epoch)]
    assert sum(mixed) >= per_epoch, mixed  # most random batches mix the two topics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clustered_packing_drops_and_repeats_nothing_within_an_epoch(seed):
    rng = np.random.default_rng(seed)
    clusters = rng.choice(9, size=103, p=np.arange(1, 10) / 45).tolist()  # skewed sizes, some above the batch size
    batch_size = 8
    for epoch in range(3):
        batches = clustered_epoch(clusters, batch_size, seed, epoch)
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(103))
        assert len(batches) == math.ceil(103 / batch_size)
        assert all(len(batch) == batch_size for batch in batches[:-1]) and len(batches[-1]) == 103 % batch_size
        single_cluster = sum(len({clusters[i] for i in batch}) == 1 for batch in batches)
        sizes = np.bincount(clusters)
        assert single_cluster >= int((sizes // batch_size).sum())


def test_clustered_batches_are_a_pure_function_of_seed_and_epoch():
    clusters = [i % 5 for i in range(50)]
    cfg = config(batching="clustered", batch_size=6)
    steps = list(range(3 * math.ceil(50 / 6)))
    sequential = ClusteredBatches(clusters, cfg)
    expected = [sequential(step) for step in steps]
    # A fresh plan (a resumed job) asked out of order, as after a resume in the middle of an epoch.
    for step in reversed(steps):
        assert ClusteredBatches(clusters, cfg)(step) == expected[step]
    per_epoch = math.ceil(50 / 6)
    assert expected[:per_epoch] != expected[per_epoch : 2 * per_epoch]  # every epoch is shuffled anew
    other_seed = ClusteredBatches(clusters, config(batching="clustered", batch_size=6, seed=8))
    assert [other_seed(step) for step in steps] != expected


def test_no_two_seeds_share_an_epoch_of_batches():
    """seed + epoch seeding gave seed 1's first epoch to seed 0's second; every (seed, epoch) must differ."""
    per_epoch = math.ceil(40 / 4)
    orders = {}
    for seed in (0, 1, 2):
        cfg = config(seed=seed, max_epochs=3)
        for epoch in range(3):
            orders[(seed, epoch)] = [tuple(RandomBatches(40, cfg)(epoch * per_epoch + i)) for i in range(per_epoch)]
    assert len(set(map(tuple, orders.values()))) == len(orders)
    clusters = [i % 5 for i in range(40)]
    assert clustered_epoch(clusters, 4, seed=0, epoch=1) != clustered_epoch(clusters, 4, seed=1, epoch=0)
    assert epoch_seed(7, 0) == 7  # epoch 0 keeps the run's seed
    with pytest.raises(ValueError, match="seed"):
        epoch_seed(-1, 0)


def test_random_batching_is_todays_seeded_permutation():
    cfg = config(batch_size=3, max_epochs=2)
    plan = batch_plan(8, cfg)
    assert [plan(step) for step in range(6)] == [RandomBatches(8, cfg)(step) for step in range(6)]


def reference_batch(n_triples: int, config: TrainConfig, step: int) -> list[int]:
    """Random batches as the committed results were trained: a fresh seeded permutation of all triples per step."""
    per_epoch = math.ceil(n_triples / config.batch_size)
    epoch, position = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))
    order = torch.randperm(n_triples, generator=generator)
    return order[position * config.batch_size : (position + 1) * config.batch_size].tolist()


@pytest.mark.parametrize("n_triples, batch_size", [(1, 4), (8, 3), (37, 5), (1000, 64)])
def test_random_batches_equal_the_per_step_permutation_walked_or_built_at_any_step(n_triples, batch_size):
    for seed in (0, 7, 166613):
        cfg = config(seed=seed, batch_size=batch_size)
        steps = range(3 * math.ceil(n_triples / batch_size))  # three epochs, the last batch of each partial or full
        expected = [reference_batch(n_triples, cfg, step) for step in steps]
        walked = batch_plan(n_triples, cfg)
        assert [walked(step) for step in steps] == expected
        assert [RandomBatches(n_triples, cfg)(step) for step in steps] == expected  # a resumed job's fresh plan
        assert all(type(i) is int for i in walked(0))  # Python ints, as torch's tolist gave


def test_random_batches_draw_one_permutation_per_epoch_and_keep_it_as_int32(monkeypatch):
    calls = []
    randperm = torch.randperm

    def counting(n, *args, **kwargs):
        calls.append(n)
        return randperm(n, *args, **kwargs)

    monkeypatch.setattr(torch, "randperm", counting)
    cfg = config(batch_size=4)
    plan = batch_plan(40, cfg)
    for step in range(3 * 10):  # three epochs of 10 steps
        plan(step)
    assert calls == [40, 40, 40]  # not one permutation of all triples per step
    assert plan._plan.dtype == np.int32


def test_a_step_budget_gives_an_eighth_of_the_data_as_many_updates_as_all_of_it():
    """Data efficiency at equal updates: with max_steps the cap counts steps, so a small fraction trains more epochs
    over its triples (each epoch a permutation of all of them), where an epochs cap gives it fewer steps."""
    equal_updates = config(batch_size=4, max_epochs=100, max_steps=40)
    assert total_steps(160, equal_updates) == total_steps(20, equal_updates) == 40
    plan = batch_plan(20, equal_updates)
    for epoch in range(8):  # 40 steps of 5 batches per epoch
        assert sorted(sum((plan(step) for step in range(5 * epoch, 5 * epoch + 5)), [])) == list(range(20))
    equal_epochs = config(batch_size=4, max_epochs=1, max_steps=None)
    assert (total_steps(160, equal_epochs), total_steps(20, equal_epochs)) == (40, 5)


def test_clustered_batching_needs_a_cluster_per_triple():
    with pytest.raises(ValueError, match="one cluster id per training triple"):
        batch_plan(8, config(batching="clustered"))
    with pytest.raises(ValueError, match="one cluster id per training triple"):
        batch_plan(8, config(batching="clustered"), [0] * 7)
    with pytest.raises(ValueError, match="'sorted' is not a valid Batching"):  # the typed config rejects it
        config(batching="sorted")


def test_cluster_file_must_cover_the_runs_triples(tmp_path):
    path = tmp_path / "clusters.tsv"
    write_tsv(path, ["qid", "pos_id", "neg_id", "cluster"], [("q1", "d1", "d2", 3), ("q2", "d3", "d4", 0)])
    assert read_clusters(path, [("q2", "d3", "d4"), ("q1", "d1", "d2")]) == [0, 3]
    with pytest.raises(ValueError, match="another data fraction"):
        read_clusters(path, [("q3", "d5", "d6")])


def test_embeddings_are_looked_up_across_shards_and_missing_ids_are_named(tmp_path):
    save_embeddings(tmp_path / "a.npz", ["d1", "d2"], np.eye(2, dtype=np.float32))
    save_embeddings(tmp_path / "b.npz", ["d3"], np.ones((1, 2), dtype=np.float32))
    found = lookup_embeddings({"d1", "d3"}, [str(tmp_path / "a.npz"), str(tmp_path / "b.npz")])
    assert sorted(found) == ["d1", "d3"] and found["d3"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="'d9'"):
        lookup_embeddings({"d9"}, [str(tmp_path / "a.npz")])


def test_cluster_statistics_count_what_fits_single_cluster_batches():
    stats = cluster_statistics(np.array([0] * 9 + [1] * 3 + [2]), batch_size=4)
    assert (stats["n_clusters"], stats["size_min"], stats["size_max"], stats["singletons"]) == (3, 1, 9, 1)
    assert stats["share_in_single_cluster_batches"] == pytest.approx(8 / 13)
