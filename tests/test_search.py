"""Sharded search equals unsharded exact search, ties included; approximate indexes and npz files work."""

from __future__ import annotations

import numpy as np
import pytest

from margin_retrieval.retrieval.runs import PAD_ID, read_run
from margin_retrieval.jobs.io import load_embeddings, save_embeddings
from margin_retrieval.retrieval import search
from margin_retrieval.retrieval.search import (TopK, load_topk, merge_topk, save_topk, search_files, search_shard,
                                     search_shards, write_run_from_topk)

DIM = 16


def normalised(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def collection():
    rng = np.random.default_rng(0)
    docs = normalised(rng, 500)
    doc_ids = np.array([f"d{i}" for i in rng.permutation(500)])  # ids unrelated to position
    queries = normalised(rng, 20)
    return np.array([f"q{i}" for i in range(20)]), queries, doc_ids, docs


def sharded(query_ids, queries, doc_ids, docs, k, n_shards=3, **kwargs) -> TopK:
    bounds = [i * len(docs) // n_shards for i in range(n_shards + 1)]
    return search_shards(query_ids, queries, ((doc_ids[a:b], docs[a:b]) for a, b in zip(bounds, bounds[1:])), k,
                         **kwargs)


def test_sharded_equals_unsharded_and_brute_force(collection):
    query_ids, queries, doc_ids, docs = collection
    whole = search_shard(query_ids, queries, doc_ids, docs, 50, threads=1)
    merged = sharded(query_ids, queries, doc_ids, docs, 50)
    np.testing.assert_array_equal(merged.query_ids, query_ids)
    np.testing.assert_array_equal(merged.doc_ids, whole.doc_ids)
    np.testing.assert_allclose(merged.scores, whole.scores, rtol=0, atol=1e-6)
    brute = np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :50]
    np.testing.assert_array_equal(whole.doc_ids, doc_ids[brute])
    assert (np.diff(whole.scores, axis=1) <= 0).all()


def test_k_larger_than_a_shard_returns_the_whole_shard(collection):
    query_ids, queries, doc_ids, docs = collection
    result = search_shard(query_ids, queries, doc_ids[:7], docs[:7], 1000)
    assert result.doc_ids.shape == (20, 7) and result.scores.shape == (20, 7)
    assert merge_topk([result], 1000).doc_ids.shape == (20, 7)


def test_float16_input_is_searched_as_float32(collection):
    query_ids, queries, doc_ids, docs = collection
    half = search_shard(query_ids, queries, doc_ids, docs.astype(np.float16), 10)
    assert half.scores.dtype == np.float32
    full = search_shard(query_ids, queries, doc_ids, docs.astype(np.float16).astype(np.float32), 10)
    np.testing.assert_array_equal(half.doc_ids, full.doc_ids)


def test_ties_at_the_cut_off_are_broken_by_doc_id_descending_whatever_the_sharding(collection):
    query_ids, queries, doc_ids, docs = collection
    copies = 42  # many more tied documents than k, in every shard
    docs, queries = docs.copy(), queries.copy()
    tied = np.random.default_rng(1).choice(len(docs), copies, replace=False)
    # One-hot vectors give exact products, so every copy scores exactly 1.0 for query 0 (the best) wherever BLAS
    # puts it in a block; copies of a general vector can differ by one float32 ulp between positions.
    docs[tied] = queries[0] = np.eye(DIM, dtype=np.float32)[0]
    k = 10
    expected = sorted(doc_ids[tied], reverse=True)[:k]
    for n_shards in (1, 3, 7):
        result = sharded(query_ids, queries, doc_ids, docs, k, n_shards=n_shards)
        assert list(result.doc_ids[0]) == expected
        assert len(set(result.scores[0])) == 1


def test_exact_search_in_query_blocks_equals_one_block(collection, monkeypatch):
    query_ids, queries, doc_ids, docs = collection
    whole = search_shard(query_ids, queries, doc_ids, docs, 30)
    monkeypatch.setattr(search, "SCORE_BLOCK_FLOATS", 3 * len(docs))  # 3 queries a block, the last one short
    blocked = search_shard(query_ids, queries, doc_ids, docs, 30)
    np.testing.assert_array_equal(blocked.doc_ids, whole.doc_ids)
    # BLAS may pick another kernel for a 3-row block than for the whole matrix and round an inner product one ulp
    # apart (seen on an AMD EPYC); the order above is what must not change.
    np.testing.assert_allclose(blocked.scores, whole.scores, rtol=0, atol=1e-6)


def test_ivf_index_with_all_lists_probed_is_exact(collection):
    query_ids, queries, doc_ids, docs = collection
    exact = sharded(query_ids, queries, doc_ids, docs, 20)
    ivf = sharded(query_ids, queries, doc_ids, docs, 20, index_factory="IVF4,Flat", search_params="nprobe=4")
    np.testing.assert_array_equal(ivf.doc_ids, exact.doc_ids)


def test_ivf_slots_it_cannot_fill_are_padding_and_left_out_of_runs(collection, tmp_path):
    query_ids, queries, doc_ids, docs = collection
    result = search_shard(query_ids, queries, doc_ids, docs, 300, index_factory="IVF8,Flat")  # nprobe=1
    padded = result.doc_ids == PAD_ID
    assert padded.any() and np.isneginf(result.scores[padded]).all()
    assert not padded[:, 0].any() and (np.diff(padded.astype(int), axis=1) >= 0).all()  # padding comes last
    save_topk(tmp_path / "topk.npz", result)
    save_embeddings(tmp_path / "queries.npz", query_ids, queries)
    lines = write_run_from_topk(tmp_path / "topk.npz", tmp_path / "queries.npz", tmp_path / "run.trec", "ivf")
    assert lines == (~padded).sum() == len(read_run(tmp_path / "run.trec"))


def test_merge_rejects_shards_searched_with_different_queries(collection):
    query_ids, queries, doc_ids, docs = collection
    a = search_shard(query_ids, queries, doc_ids, docs, 5)
    b = search_shard(query_ids[::-1], queries[::-1], doc_ids, docs, 5)
    with pytest.raises(ValueError, match="different query sets"):
        merge_topk([a, b], 5)


def test_npz_files_round_trip_under_the_exact_name(collection, tmp_path):
    query_ids, queries, doc_ids, docs = collection
    path = tmp_path / "embeddings.bin"  # numpy would append '.npz' to a name it opens itself
    save_embeddings(path, doc_ids.tolist(), docs.astype(np.float16))
    assert [p.name for p in tmp_path.iterdir()] == ["embeddings.bin"]
    ids, embeddings = load_embeddings(path)
    assert ids.dtype.kind == "U" and embeddings.dtype == np.float16
    np.testing.assert_array_equal(ids, doc_ids)


def test_rule_functions_search_every_shard_into_one_top_k_and_write_a_complete_run(collection, tmp_path):
    query_ids, queries, doc_ids, docs = collection
    save_embeddings(tmp_path / "queries.npz", query_ids, queries)
    shards = []
    for i, (a, b) in enumerate([(0, 200), (200, 500)], start=1):
        shards.append(tmp_path / f"docs-{i}-of-2.npz")
        save_embeddings(shards[-1], doc_ids[a:b], docs[a:b])
    search_files(tmp_path / "queries.npz", shards, tmp_path / "topk.npz", 30, threads=1)
    assert load_topk(tmp_path / "topk.npz").doc_ids.shape == (20, 30)
    write_run_from_topk(tmp_path / "topk.npz", tmp_path / "queries.npz", tmp_path / "run.trec", "test")
    run = read_run(tmp_path / "run.trec")
    whole = search_shard(query_ids, queries, doc_ids, docs, 30)
    assert run["query_id"].tolist() == np.repeat(query_ids, 30).tolist()
    assert run["doc_id"].tolist() == whole.doc_ids.ravel().tolist()
