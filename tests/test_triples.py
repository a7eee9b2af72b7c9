"""Query splits, first stages, negative sampling, validation candidates and the docpairs mode."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from margin_retrieval.workflow.config import FirstStage, TrainDataSettings
from margin_retrieval.data import collections, training_data
from margin_retrieval.data import triples
from margin_retrieval.data.teacher_scores import MissingTeacherScores
from margin_retrieval.jobs.errors import ConfigError
from margin_retrieval.workflow.experiments import fraction_size
from margin_retrieval.jobs.io import save_embeddings
from margin_retrieval.retrieval.first_stage import dense_rankings, ranking_depth, write_student_ranking
from tests.configs import settings
from tests.tiny_collection import write_collection

REPO = Path(__file__).resolve().parents[1]

QRELS = {
    "q1": {"a": 1, "b": 2, "c": 0},
    "q2": {"d": 1},
    "q3": {"e": 0},  # no positive
    "q4": {"f": 1, "g": 1},
}
RANKINGS = {
    "q1": ["x1", "a", "c", "x2", "b", "x3", "x4", "x5"],
    "q2": ["d", "y1", "y2", "y3", "y4"],
    "q4": ["z1", "z2", "f", "z3"],
}


def read_tsv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_positives_are_rel_above_zero_only():
    assert triples.positives(QRELS) == {"q1": ["a", "b"], "q2": ["d"], "q4": ["f", "g"]}


def test_split_is_seeded_disjoint_and_complete():
    qids = [f"q{i}" for i in range(50)]
    split = triples.split_queries(qids, 10, seed=3)
    assert split == triples.split_queries(list(reversed(qids)), 10, seed=3)  # input order does not matter
    assert split != triples.split_queries(qids, 10, seed=4)
    assert len(split["validation"]) == 10 and len(split["train_order"]) == 40
    assert not set(split["validation"]) & set(split["train_order"])
    assert set(split["validation"]) | set(split["train_order"]) == set(qids)
    with pytest.raises(ConfigError, match=r"train_data\.validation_queries: 50 would hold out all 50 training"):
        triples.split_queries(qids, 50, seed=0)


def test_fractions_are_nested_prefixes():
    order = triples.split_queries([f"q{i}" for i in range(37)], 5, seed=0)["train_order"]
    subsets = [set(order[:fraction_size(len(order), f)]) for f in (0.125, 0.25, 0.5, 1.0)]
    assert all(small < large for small, large in zip(subsets, subsets[1:]))


def test_negatives_never_judged_positive_and_from_the_top_depth():
    rows, stats = triples.sample_negatives(["q1", "q2", "q3", "q4"], QRELS, RANKINGS, depth=3, per_positive=2, seed=0)
    for qid, pos, neg in rows:
        assert QRELS[qid][pos] > 0
        assert QRELS[qid].get(neg, 0) <= 0
        pool = [d for d in RANKINGS[qid] if QRELS[qid].get(d, 0) <= 0][:3]
        assert neg in pool
    # q1: 2 positives x 2 negatives; q2: 1 x 2; q4: 2 x 2 (pool z1, z2, z3); q3 has no positive
    assert [r[0] for r in rows] == ["q1"] * 4 + ["q2"] * 2 + ["q4"] * 4
    assert all(len({n for q, p, n in rows if (q, p) == key}) == 2 for key in {(q, p) for q, p, _ in rows})
    # the judged non-relevant doc "c" (rel 0) may be a negative: only positives are excluded
    assert stats["triples"] == 10 and stats["train_positives"] == 5
    assert stats["train_positives_in_top_depth"] == 3  # q1: a in top-3; q2: d; q4: f
    assert 1 <= stats["mean_negative_rank"] <= 8


def test_negatives_are_seeded_and_independent_of_other_queries():
    ranking = {"q": [f"d{i}" for i in range(100)]}
    qrels = {"q": {"d5": 1, "d50": 1}}
    first, _ = triples.sample_negatives(["q"], qrels, ranking, 100, 3, seed=0)
    assert first == triples.sample_negatives(["q"], qrels, ranking, 100, 3, seed=0)[0]
    assert first != triples.sample_negatives(["q"], qrels, ranking, 100, 3, seed=1)[0]
    together, _ = triples.sample_negatives(["q1", "q2", "q4"], QRELS, RANKINGS, 3, 1, seed=0)
    alone, _ = triples.sample_negatives(["q4"], QRELS, RANKINGS, 3, 1, seed=0)
    assert [r for r in together if r[0] == "q4"] == alone


def test_query_without_ranking_gets_no_triples():
    rows, stats = triples.sample_negatives(["q2"], QRELS, {"q2": ["d"]}, 5, 1, seed=0)
    assert rows == [] and stats["queries_without_negatives"] == 1


def test_validation_candidates_keep_rank_order_and_depth():
    rows = triples.validation_candidates(["q1", "q2"], RANKINGS, depth=3)
    assert rows == [("q1", "x1"), ("q1", "a"), ("q1", "c"), ("q2", "d"), ("q2", "y1"), ("q2", "y2")]
    recall = triples.candidate_recall(rows, QRELS, ["q1", "q2"])
    assert recall["validation_positives"] == 3 and recall["validation_positives_in_candidates"] == 2


def test_bm25_ranks_matching_docs_and_drops_unmatched():
    docs = [("d1", "cats purr loudly"), ("d2", "dogs bark"), ("d3", "cats and dogs"), ("d4", "birds sing")]
    rankings = triples.bm25_rankings(docs, {"q": "cats", "empty": "the of and", "none": "zebra"}, k=10)
    assert set(rankings["q"]) == {"d1", "d3"}
    assert rankings["empty"] == [] and rankings["none"] == []


def test_dense_rankings_merge_shards_exactly():
    rng = np.random.default_rng(0)
    queries, docs = rng.normal(size=(5, 8)), rng.normal(size=(30, 8))
    doc_ids = [f"d{i:02d}" for i in range(30)]
    shards = [(doc_ids[:11], docs[:11]), (doc_ids[11:], docs[11:])]
    got = dense_rankings([f"q{i}" for i in range(5)], queries, shards, k=7, wanted={"q1", "q3"})
    assert set(got) == {"q1", "q3"}
    for qi in (1, 3):
        expected = [doc_ids[i] for i in np.argsort(-(docs @ queries[qi]))[:7]]
        assert got[f"q{qi}"] == expected


def _outputs(directory: Path) -> dict[str, Path]:
    return {key: directory / name for key, name in
            [("splits", "splits.json"), ("triples", "triples.tsv"), ("candidates", "validation_candidates.tsv"),
             ("stats", "stats.json")]}


def train_data(**section) -> TrainDataSettings:
    """The ``train_data`` settings as the workflow builds them: validated, the schema's defaults filled in."""
    return settings(train_data={"dataset": "beir/scifact/train", **section}).train_data


@pytest.fixture()
def tiny_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "home"))
    spec = write_collection(tmp_path / "data", "train", n_queries=24, seed=0)
    return collections.load(spec, "train")


TRAIN_DATA = {"validation_queries": 4, "seed": 0, "negatives": {"source": "bm25", "depth": 10, "per_positive": 2},
              "validation": {"candidates": "bm25", "depth": 8}}


def mine(dataset, config: TrainDataSettings, directory: Path, source: FirstStage = FirstStage.BM25,
         ranking: Path | None = None) -> tuple[dict, dict, dict[str, Path]]:
    """The split job, then one triples job: (split stats, triples stats, paths)."""
    out = _outputs(directory)
    split_stats = training_data.make_split(dataset, config, {**out, "stats": directory / "split_stats.json"},
                                           ranking)
    stats = training_data.make_mined_triples(dataset, config, source, out["splits"], out, ranking)
    return split_stats, stats, out


def test_split_and_bm25_triples_end_to_end(tiny_dataset, tmp_path):
    split_stats, stats, out = mine(tiny_dataset, train_data(**TRAIN_DATA), tmp_path / "out")
    splits = json.loads(out["splits"].read_text())
    qrels = collections.qrels(tiny_dataset)
    assert len(splits["validation"]) == 4 and len(splits["train_order"]) == 20
    assert not set(splits["validation"]) & set(splits["train_order"])
    assert set(splits["validation_queries"]) == set(splits["validation"])
    assert splits["validation_qrels"] == {q: qrels[q] for q in splits["validation"]}
    rows = read_tsv(out["triples"])
    assert rows and set(rows[0]) == {"qid", "pos_id", "neg_id"}
    for row in rows:
        assert row["qid"] in splits["train_order"]
        assert qrels[row["qid"]][row["pos_id"]] > 0
        assert qrels[row["qid"]].get(row["neg_id"], 0) <= 0
    candidates = read_tsv(out["candidates"])
    per_query: dict[str, list[str]] = {}
    for row in candidates:
        per_query.setdefault(row["qid"], []).append(row["doc_id"])
    assert set(per_query) <= set(splits["validation"])
    assert all(1 <= len(docs) <= 8 for docs in per_query.values())
    assert split_stats["validation_candidates"] == len(candidates)
    assert stats["triples"] == len(rows) and stats["negatives_source"] == "bm25"
    assert json.loads(out["stats"].read_text())["triples"] == len(rows)
    _, _, again = mine(tiny_dataset, train_data(**TRAIN_DATA), tmp_path / "again")
    assert again["triples"].read_text() == out["triples"].read_text()
    assert again["splits"].read_text() == out["splits"].read_text()


def test_split_takes_the_schema_defaults(tiny_dataset, tmp_path):
    """validation_queries 50 and validation depth 10 (the schema's), not a second default in the code."""
    config = train_data()
    assert (config.validation_queries, config.validation.depth) == (50, 10)
    dataset = collections.load(write_collection(tmp_path / "big", "big", n_queries=60, seed=1), "big")
    stats, _, out = mine(dataset, config, tmp_path / "out")
    assert stats["validation_queries"] == 50 and stats["validation_depth"] == 10
    per_query: dict[str, int] = {}
    for row in read_tsv(out["candidates"]):
        per_query[row["qid"]] = per_query.get(row["qid"], 0) + 1
    assert max(per_query.values()) == 10


def _student_ranking(dataset, directory: Path, seed: int, deepest_cut: int = 10) -> Path:
    """A random student's ranking of the training queries, written as the rank_training_queries rule does."""
    rng = np.random.default_rng(seed)
    query_ids = sorted(collections.queries(dataset))
    doc_ids = [doc_id for doc_id, _ in collections.docs_slice(dataset, 0, 48)]
    directory.mkdir(parents=True, exist_ok=True)
    save_embeddings(directory / "q.npz", query_ids, rng.normal(size=(len(query_ids), 4)).astype(np.float32))
    save_embeddings(directory / "d1.npz", doc_ids[:20], rng.normal(size=(20, 4)).astype(np.float32))
    save_embeddings(directory / "d2.npz", doc_ids[20:], rng.normal(size=(28, 4)).astype(np.float32))
    out = directory / f"ranking-{deepest_cut}.tsv"
    write_student_ranking(directory / "q.npz", [directory / "d1.npz", directory / "d2.npz"],
                          collections.qrels(dataset), deepest_cut, out)
    return out


def test_student_ranking_covers_every_query_with_a_positive_past_the_deepest_cut(tiny_dataset, tmp_path):
    qrels = collections.qrels(tiny_dataset)
    path = _student_ranking(tiny_dataset, tmp_path, seed=0, deepest_cut=6)
    depth = ranking_depth(qrels, 6)
    assert depth == 6 + max(sum(rel > 0 for rel in docs.values()) for docs in qrels.values())
    per_query: dict[str, int] = {}
    for row in csv.DictReader(path.open(), delimiter="\t"):
        per_query[row["qid"]] = per_query.get(row["qid"], 0) + 1
    assert set(per_query) == set(triples.positives(qrels)) and set(per_query.values()) == {depth}


def test_a_deeper_student_ranking_gives_the_same_triples_and_candidates(tiny_dataset, tmp_path):
    config = train_data(**{**TRAIN_DATA, "negatives": {"source": "student", "depth": 5, "per_positive": 1},
                           "validation": {"candidates": "student", "depth": 6}})
    runs = [mine(tiny_dataset, config, tmp_path / f"out{cut}", FirstStage.STUDENT,
                 _student_ranking(tiny_dataset, tmp_path / "emb", seed=0, deepest_cut=cut)) for cut in (6, 30)]
    for key in ("triples", "candidates"):
        assert runs[0][2][key].read_text() == runs[1][2][key].read_text()


def test_a_query_missing_from_the_student_ranking_is_an_error(tmp_path):
    path = tmp_path / "ranking.tsv"
    path.write_text("qid\tdoc_id\nq1\td1\n")
    with pytest.raises(ValueError, match="1 queries are not ranked"):
        training_data.read_rankings(path, {"q1", "q2"})


def test_student_first_stage(tiny_dataset, tmp_path):
    ranking = _student_ranking(tiny_dataset, tmp_path / "emb", seed=0)
    config = train_data(**{**TRAIN_DATA, "negatives": {"source": "student", "depth": 5, "per_positive": 1},
                           "validation": {"candidates": "student", "depth": 6}})
    split_stats, stats, out = mine(tiny_dataset, config, tmp_path / "out", FirstStage.STUDENT, ranking)
    assert stats["negatives_source"] == "student" and split_stats["validation_candidates"] == 4 * 6
    qrels = collections.qrels(tiny_dataset)
    assert all(qrels[r["qid"]].get(r["neg_id"], 0) <= 0 for r in read_tsv(out["triples"]))
    with pytest.raises(ValueError, match="ranking"):
        mine(tiny_dataset, config, tmp_path / "fail", FirstStage.STUDENT)


def test_negative_sources_share_one_split_and_each_student_mines_its_own(tiny_dataset, tmp_path):
    config = train_data(**TRAIN_DATA)
    out = _outputs(tmp_path)
    training_data.make_split(tiny_dataset, config, {**out, "stats": tmp_path / "split_stats.json"})
    triples_of = {}
    sources = {"bm25": (FirstStage.BM25, None),
               "student/a": (FirstStage.STUDENT, _student_ranking(tiny_dataset, tmp_path / "a", seed=1)),
               "student/b": (FirstStage.STUDENT, _student_ranking(tiny_dataset, tmp_path / "b", seed=2))}
    for name, (source, ranking) in sources.items():
        paths = {"triples": tmp_path / name / "triples.tsv", "stats": tmp_path / name / "stats.json"}
        training_data.make_mined_triples(tiny_dataset, config, source, out["splits"], paths, ranking)
        triples_of[name] = [(r["qid"], r["pos_id"], r["neg_id"]) for r in read_tsv(paths["triples"])]
    train_order = json.loads(out["splits"].read_text())["train_order"]
    for rows in triples_of.values():  # the same training queries and positives, in the same order
        assert [(q, p) for q, p, _ in rows] == [(q, p) for q, p, _ in triples_of["bm25"]]
        assert {q for q, _, _ in rows} <= set(train_order)
    negatives = {name: [n for _, _, n in rows] for name, rows in triples_of.items()}
    assert negatives["bm25"] != negatives["student/a"] != negatives["student/b"]


# --- docpairs mode (MS MARCO) on small in-memory data --------------------------------------------------------------

Query = namedtuple("Query", "query_id text")
Qrel = namedtuple("Qrel", "query_id doc_id relevance iteration")
Doc = namedtuple("Doc", "doc_id text")
Pair = namedtuple("Pair", "query_id doc_id_a doc_id_b")
Scored = namedtuple("Scored", "query_id doc_id score")


class FakeDataset:
    """The part of the ir_datasets API that the training-data code uses."""

    def __init__(self, queries, qrels, docs=(), pairs=(), scored=()):
        self._queries, self._qrels, self._docs, self._pairs, self._scored = queries, qrels, docs, pairs, scored

    def queries_iter(self):
        return iter([Query(q, t) for q, t in self._queries.items()])

    def qrels_iter(self):
        return iter([Qrel(q, d, r, "0") for q, docs in self._qrels.items() for d, r in docs.items()])

    def docs_count(self):
        return len(self._docs)

    def docs_iter(self):
        return [Doc(*doc) for doc in self._docs]

    def docpairs_iter(self):
        return iter([Pair(*pair) for pair in self._pairs])

    def scoreddocs_iter(self):
        return iter([Scored(*s) for s in self._scored])


PAIRS = [(q, f"p{q}", f"n{q}{i}") for i in range(4) for q in ("a", "b", "c", "d", "e")] + [("f", "pf", "nf0")]
TRAIN = FakeDataset(
    queries={q: f"query topic{q}" for q in "abcdef"},
    qrels={q: {f"p{q}": 1} for q in "abcdef"},
    docs=[(f"p{q}", f"passage about topic{q}") for q in "abcdef"]
    + [(f"n{q}{i}", f"other words number{i}") for q in "abcde" for i in range(4)],
    pairs=PAIRS,
)
VALID = FakeDataset(
    queries={"v1": "valid one", "v2": "valid two", "v3": "unjudged"},
    qrels={"v1": {"pa": 2, "na0": 0}, "v2": {"pb": 1}},
    scored=[("v1", d, s) for d, s in [("pa", 3.0), ("na0", 5.0), ("nb1", 1.0), ("nc2", 0.5)]]
    + [("v2", "pb", 1.0), ("v2", "pc", 2.0), ("v3", "pa", 1.0)],
)


def settings_of(section: dict) -> TrainDataSettings:
    return train_data(**section)


def test_docpairs_mode_with_a_separate_validation_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(collections, "load_id", lambda dataset_id: VALID)
    config = {"seed": 0, "validation_queries": 2, "docpairs": {"per_query": 3, "drop_incomplete": True},
              "validation": {"dataset": "fake/trec-dl", "depth": 2}}
    out = _outputs(tmp_path)
    stats = training_data.make_docpairs_data(TRAIN, settings_of(config), out)
    rows = [(r["qid"], r["pos_id"], r["neg_id"]) for r in read_tsv(out["triples"])]
    splits = json.loads(out["splits"].read_text())
    assert sorted(splits["train_order"]) == ["a", "b", "c", "d", "e"]  # f has 1 pair < 3: dropped
    assert {q for q, _, _ in rows} == set(splits["train_order"])
    for qid in splits["train_order"]:  # the first per_query pairs in file order
        assert [r for r in rows if r[0] == qid] == [(qid, f"p{qid}", f"n{qid}{i}") for i in range(3)]
    assert [r[0] for r in rows] == [q for q in splits["train_order"] for _ in range(3)]
    assert splits["validation"] == ["v1", "v2"]  # v3 has no judged positive
    assert splits["validation_queries"] == {"v1": "valid one", "v2": "valid two"}
    assert splits["validation_qrels"] == {"v1": {"pa": 2, "na0": 0}, "v2": {"pb": 1}}
    candidates = [(r["qid"], r["doc_id"]) for r in read_tsv(out["candidates"])]
    assert candidates == [("v1", "na0"), ("v1", "pa"), ("v2", "pc"), ("v2", "pb")]
    assert stats["mode"] == "docpairs" and stats["triples"] == 15 and stats["validation_recall"] == 1.0


def test_docpairs_mode_max_queries_and_held_out_validation(tmp_path, monkeypatch):
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "home"))
    config = {"seed": 1, "validation_queries": 1,
              "docpairs": {"per_query": 2, "drop_incomplete": False, "max_queries": 4},
              "validation": {"candidates": "bm25", "depth": 3}}
    out = _outputs(tmp_path)
    training_data.make_docpairs_data(TRAIN, settings_of(config), out)
    splits = json.loads(out["splits"].read_text())
    assert sorted(splits["validation"] + splits["train_order"]) == ["a", "b", "c", "d"]  # the first 4 queries
    rows = read_tsv(out["triples"])
    assert {r["qid"] for r in rows} == set(splits["train_order"])
    candidates = read_tsv(out["candidates"])
    assert {r["qid"] for r in candidates} == set(splits["validation"]) and len(candidates) <= 3
    held_out = splits["validation"][0]
    assert f"p{held_out}" in {r["doc_id"] for r in candidates}  # BM25 finds the passage that names the query


# --- published teacher scores: Margin-MSE on the scored pairs, and the coverage check ---------------------------------

SCORES = [  # score_pos score_neg qid pos_id neg_id, queries interleaved as in a shuffled file
    ("1.0", "0.5", "a", "pa", "sa0"), ("2.0", "1.0", "b", "pb", "sb0"), ("1.5", "0.2", "a", "pa", "sa1"),
    ("0.1", "0.0", "f", "pf", "sf0"), ("0.3", "0.1", "a", "pa", "sa2"), ("0.4", "0.2", "a", "pa", "sa3"),
]


def write_scores(path: Path, lines) -> Path:
    path.write_text("".join("\t".join(line) + "\n" for line in lines))
    return path


def triples_in(path: Path) -> list[tuple[str, str, str]]:
    return [(r["qid"], r["pos_id"], r["neg_id"]) for r in read_tsv(path)]


def test_scored_pairs_are_grouped_per_query_without_dropping_and_share_the_split(tmp_path, monkeypatch):
    monkeypatch.setattr(collections, "load_id", lambda dataset_id: VALID)
    config = {"seed": 0, "docpairs": {"per_query": 3, "drop_incomplete": True},
              "validation": {"dataset": "fake/trec-dl", "depth": 2}}
    scores = write_scores(tmp_path / "scores.tsv", SCORES)
    plain = training_data.make_docpairs_data(TRAIN, settings_of(config), _outputs(tmp_path / "plain"))
    out = {**_outputs(tmp_path), "scored_triples": tmp_path / "scored.tsv", "scored_stats": tmp_path / "scored.json"}
    stats = training_data.make_docpairs_data(TRAIN, settings_of(config), out, scored_pairs=scores)
    splits = json.loads(out["splits"].read_text())
    # f has one docpair (< 3: no docpairs triple) but a scored pair: the split holds the queries of both
    assert sorted(splits["train_order"]) == ["a", "b", "c", "d", "e", "f"]
    scored = triples_in(out["scored_triples"])
    expected = {"a": [("a", "pa", f"sa{i}") for i in range(3)],  # the first 3 in file order: sa3 is the 4th
                "b": [("b", "pb", "sb0")], "f": [("f", "pf", "sf0")]}  # fewer than per_query: kept
    assert scored == [t for q in splits["train_order"] for t in expected.get(q, [])]
    docpairs = triples_in(out["triples"])
    assert sorted(docpairs) == sorted(triples_in(tmp_path / "plain" / "triples.tsv"))  # the same docpairs triples
    assert [r[0] for r in docpairs] == [q for q in splits["train_order"] if q != "f" for _ in range(3)]
    scored_stats = json.loads(out["scored_stats"].read_text())
    assert (scored_stats["triples"], scored_stats["train_queries_with_triples"]) == (5, 3)
    assert scored_stats["teacher_scores_file"] == str(scores)
    assert stats["triples"] == plain["triples"] == 15


def test_scored_pairs_of_held_out_validation_queries_are_not_trained_on(tmp_path, monkeypatch):
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "home"))
    config = {"seed": 3, "validation_queries": 2, "docpairs": {"per_query": 3, "drop_incomplete": True},
              "validation": {"candidates": "bm25", "depth": 3}}
    out = {**_outputs(tmp_path), "scored_triples": tmp_path / "scored.tsv", "scored_stats": tmp_path / "scored.json"}
    training_data.make_docpairs_data(TRAIN, settings_of(config), out,
                                     scored_pairs=write_scores(tmp_path / "scores.tsv", SCORES))
    splits = json.loads(out["splits"].read_text())
    assert sorted(splits["validation"] + splits["train_order"]) == ["a", "b", "c", "d", "e", "f"]
    scored_queries = {r["qid"] for r in read_tsv(out["scored_triples"])}
    assert scored_queries == {"a", "b", "f"} - set(splits["validation"])


def test_mined_triples_without_a_teacher_score_stop_the_job_before_writing(tiny_dataset, tmp_path):
    config = train_data(**TRAIN_DATA)
    _, _, out = mine(tiny_dataset, config, tmp_path / "first")
    rows = triples_in(out["triples"])
    complete = write_scores(tmp_path / "complete.tsv", [("1", "0", *t) for t in rows])
    partial = write_scores(tmp_path / "partial.tsv", [("1", "0", *t) for t in rows[1:]])
    paths = {"triples": tmp_path / "check" / "triples.tsv", "stats": tmp_path / "check" / "stats.json"}
    with pytest.raises(MissingTeacherScores) as error:
        training_data.make_mined_triples(tiny_dataset, config, FirstStage.BM25, out["splits"], paths,
                                         teacher_scores_file=str(partial))
    message = str(error.value)
    assert "\n" not in message and str(partial) in message and f"1 of {len(rows)} training triples" in message
    assert f"e.g. qid {rows[0][0]} pos_id {rows[0][1]} neg_id {rows[0][2]}" in message
    assert not paths["triples"].exists()  # no triples: no job downstream (and no training) starts
    training_data.make_mined_triples(tiny_dataset, config, FirstStage.BM25, out["splits"], paths,
                                     teacher_scores_file=str(complete))
    assert read_tsv(paths["triples"]) == read_tsv(out["triples"])


DOCPAIRS_JOB = textwrap.dedent("""
    import runpy, sys, types
    from snakemake.iocontainers import Namedlist
    from margin_retrieval.data import collections
    from tests.test_triples import TRAIN, VALID, settings_of

    collections.load = lambda spec, name: TRAIN
    collections.load_id = lambda dataset_id: VALID
    collections.configure_home = lambda home: None

    def named(**paths):
        files = Namedlist(list(paths.values()))
        for index, name in enumerate(paths):
            files._set_name(name, index)
        return files

    out, scores = sys.argv[2], sys.argv[3]
    settings = settings_of({"seed": 0, "docpairs": {"per_query": 3}, "validation": {"dataset": "fake", "depth": 2},
                            "teacher_scores_file": scores, "teacher_pairs": "scored"})
    snakemake = types.SimpleNamespace(
        log=[f"{out}/job.log"], params=types.SimpleNamespace(spec={}, name="train", settings=settings, home=None),
        input=named(manifest="manifest.json", scored_pairs=scores),
        output=named(**{key: f"{out}/{key}" for key in ("splits", "candidates", "triples", "stats", "scored_triples",
                                                         "scored_stats")}))
    runpy.run_path(sys.argv[1], init_globals={"snakemake": snakemake})
""")


def test_docpairs_job_writes_the_scored_pairs_of_its_input(tmp_path):
    """The job script as Snakemake runs it (its input and output are named lists): the scored pairs reach the
    outputs that only scored mode declares."""
    scores = write_scores(tmp_path / "scores.tsv", SCORES)
    result = subprocess.run([sys.executable, "-c", DOCPAIRS_JOB, str(REPO / "workflow_scripts/training_docpairs.py"),
                             str(tmp_path), str(scores)], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, (tmp_path / "job.log").read_text()[-3000:] + result.stderr[-2000:]
    assert sorted(triples_in(tmp_path / "scored_triples")) == sorted(
        [("a", "pa", f"sa{i}") for i in range(3)] + [("b", "pb", "sb0"), ("f", "pf", "sf0")])
    assert json.loads((tmp_path / "scored_stats").read_text())["triples"] == 5
