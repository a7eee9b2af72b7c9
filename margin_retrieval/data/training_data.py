"""The training-data jobs: read the training collection, compute with :mod:`margin_retrieval.data.triples`, write.

The split (``splits.json``: held-out validation queries and the seeded ``train_order``) and the validation candidates
do not depend on where the negatives come from, so one job writes them for every run; one job per negative source
(BM25, or each student's own zero-shot ranking) writes that source's triples. In docpairs mode the dataset's own
docpairs are the only source, and the split needs their queries, so one job writes everything.
"""

from __future__ import annotations

import csv
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from margin_retrieval.workflow.config import FirstStage, TrainDataSettings
from margin_retrieval.data import collections
from margin_retrieval.data.provided_data import candidates_from_scoreddocs
from margin_retrieval.data.triples import (Rankings, bm25_rankings, candidate_recall, docpair_triples, ordered_unique,
                                           positives, sample_negatives, seeded_order, split_queries,
                                           validation_candidates)
from margin_retrieval.jobs.io import read_json, write_json, write_tsv
from margin_retrieval.data.teacher_scores import ScoredPairs, scores_from_file

log = logging.getLogger(__name__)


def read_rankings(path: str | Path, wanted: set[str]) -> Rankings:
    """The ``wanted`` queries' rankings from a student's ``ranking.tsv`` (header ``qid doc_id``, rank order; rule
    ``rank_training_queries``); a wanted query it lacks is an error, since every query with a positive is ranked."""
    rankings: Rankings = {}
    with open(path, newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        next(rows)
        for qid, doc_id in rows:
            if qid in wanted:
                rankings.setdefault(qid, []).append(doc_id)
    missing = wanted - set(rankings)
    if missing:
        raise ValueError(f"{path}: {len(missing)} queries are not ranked, e.g. {sorted(missing)[:5]}")
    return rankings


@dataclass
class Split:
    validation: list[str]
    train_order: list[str]
    validation_text: dict[str, str]
    validation_qrels: dict[str, dict[str, int]]
    candidates: list[tuple[str, str]] | None  # None: to be re-ranked from a first stage


def first_stage(source: FirstStage, dataset, query_text: dict[str, str], wanted: set[str], k: int,
                student_ranking: str | Path | None) -> Rankings:
    """Top-k of the ``wanted`` queries by BM25 over the whole corpus, or the student's ranking read from its file
    (ranked at least as deep as k, see :mod:`margin_retrieval.retrieval.first_stage`)."""
    if not wanted:
        return {}
    start = time.perf_counter()
    if source == FirstStage.BM25:
        docs = collections.docs_slice(dataset, 0, collections.doc_count(dataset))
        rankings = bm25_rankings(docs, {q: query_text[q] for q in wanted}, k)
    else:
        if not student_ranking:
            raise ValueError("first stage 'student' needs the zero-shot student's ranking of the training queries")
        rankings = read_rankings(student_ranking, wanted)
    log.info("first stage %s: top-%d of %d queries in %.1f s", source, k, len(wanted), time.perf_counter() - start)
    return rankings


def separate_validation(dataset_id: str, depth: int) -> Split:
    """A validation dataset of its own: its judged queries with scoreddocs, re-ranking those (no hold-out)."""
    val_dataset = collections.load_id(dataset_id)
    qrels, text = collections.qrels(val_dataset), collections.queries(val_dataset)
    scored = ((s.query_id, s.doc_id, s.score) for s in val_dataset.scoreddocs_iter())
    judged = set(positives(qrels))
    candidates = [(q, d) for q, d in candidates_from_scoreddocs(scored, depth) if q in judged and q in text]
    validation = ordered_unique(q for q, _ in candidates)
    if not validation:
        raise ValueError(f"validation dataset {dataset_id!r}: no query has both scoreddocs and a judged positive")
    return Split(validation, [], {q: text[q] for q in validation}, {q: qrels.get(q, {}) for q in validation},
                 candidates)


def split_training_queries(train_qids: Sequence[str], settings: TrainDataSettings, query_text: dict[str, str],
                           qrels: dict[str, dict[str, int]]) -> Split:
    """Validation queries (a separate dataset's, or held out of ``train_qids``) and the seeded train order."""
    if settings.validation.dataset:
        split = separate_validation(settings.validation.dataset, settings.validation.depth)
        split.train_order = seeded_order(train_qids, settings.seed)
        return split
    held = split_queries(train_qids, settings.validation_queries, settings.seed)
    validation = held["validation"]
    return Split(validation, held["train_order"], {q: query_text[q] for q in validation},
                 {q: qrels.get(q, {}) for q in validation}, None)


def rerank_candidates(split: Split, settings: TrainDataSettings, dataset, query_text: dict[str, str],
                      student_ranking: str | Path | None) -> list[tuple[str, str]]:
    """The split's candidates: a separate dataset's scoreddocs, or the first stage's top-depth of held-out queries."""
    if split.candidates is not None:
        return split.candidates
    depth = settings.validation.depth
    rankings = first_stage(settings.validation.candidates, dataset, query_text, set(split.validation), depth,
                           student_ranking)
    return validation_candidates(split.validation, rankings, depth)


def write_split(split: Split, candidates: list[tuple[str, str]], settings: TrainDataSettings,
                outputs: dict[str, str | Path]) -> dict:
    """splits.json and validation_candidates.tsv; returns their statistics."""
    write_json(outputs["splits"], {"validation": split.validation, "train_order": split.train_order,
                                   "validation_queries": split.validation_text,
                                   "validation_qrels": split.validation_qrels})
    write_tsv(outputs["candidates"], ["qid", "doc_id"], candidates)
    return {
        "seed": settings.seed,
        "train_queries": len(split.train_order),
        "validation_queries": len(split.validation),
        "validation_source": settings.validation.dataset or "held-out training queries",
        "validation_candidates_source": "scoreddocs" if settings.validation.dataset else settings.validation.candidates,
        "validation_depth": settings.validation.depth,
        "validation_candidates": len(candidates),
        **candidate_recall(candidates, split.validation_qrels, split.validation),
    }


def make_split(dataset, settings: TrainDataSettings, outputs: dict[str, str | Path],
               student_ranking: str | Path | None = None) -> dict:
    """Mining mode: split the queries with a judged positive, write the split, candidates and stats."""
    start = time.perf_counter()
    query_text, qrels = collections.queries(dataset), collections.qrels(dataset)
    split = split_training_queries(sorted(set(positives(qrels)) & set(query_text)), settings, query_text, qrels)
    candidates = rerank_candidates(split, settings, dataset, query_text, student_ranking)
    stats = write_split(split, candidates, settings, outputs)
    return _write_stats(outputs["stats"], stats | {"mode": "mining"}, start)


def make_mined_triples(dataset, settings: TrainDataSettings, source: FirstStage, splits_path: str | Path,
                       outputs: dict[str, str | Path], student_ranking: str | Path | None = None,
                       teacher_scores_file: str | None = None) -> dict:
    """Mining mode, one negative source: (qid, pos, neg) triples of the split's train order, and their stats.
    ``teacher_scores_file``: the published scores that Margin-MSE runs on these triples read; every triple must have
    one, checked before anything is written, so that a missing score stops the workflow before any training."""
    start = time.perf_counter()
    train_order = read_json(splits_path)["train_order"]
    query_text, qrels = collections.queries(dataset), collections.qrels(dataset)
    negatives = settings.negatives
    # Fetch past the depth by the most positives of a query, so that depth negatives remain once they are removed.
    extra = max((len(docs) for q, docs in positives(qrels).items() if q in set(train_order)), default=0)
    rankings = first_stage(source, dataset, query_text, set(train_order), negatives.depth + extra, student_ranking)
    rows, stats = sample_negatives(train_order, qrels, rankings, negatives.depth, negatives.per_positive,
                                   settings.seed)
    if teacher_scores_file:
        scores_from_file(teacher_scores_file, rows)  # raises MissingTeacherScores, naming the file and a triple
    _write_triples(outputs["triples"], rows)
    stats |= {"mode": "mining", "negatives_source": source.value, "negatives_depth": negatives.depth,
              "per_positive": negatives.per_positive, **_coverage(rows, train_order)}
    return _write_stats(outputs["stats"], stats, start)


def make_docpairs_data(dataset, settings: TrainDataSettings, outputs: dict[str, str | Path],
                       student_ranking: str | Path | None = None, scored_pairs: str | Path | None = None) -> dict:
    """Docpairs mode: the dataset's grouped docpairs split by query; writes split, candidates, triples, stats.

    ``scored_pairs`` (a published scores file, for ``train_data.teacher_pairs: scored``): also the Margin-MSE runs'
    triples and their stats (outputs ``scored_triples``, ``scored_stats``): the file's pairs, at most ``per_query``
    per query in file order. Queries with fewer are kept: the published MS MARCO scores cover triples-small, a 10%
    sample of qidpidtriples (39.8M of 397.8M pairs), so most queries have far fewer than the 128 that docpairs keep.
    The split is then made over the queries of both, so that a data fraction (a prefix of the one seeded query
    order) takes the same share of each.
    """
    start = time.perf_counter()
    docpairs = settings.docpairs
    rows = docpair_triples(_Docpairs(dataset), docpairs.per_query, docpairs.drop_incomplete, docpairs.max_queries)
    scored = (docpair_triples(ScoredPairs(scored_pairs), docpairs.per_query, drop_incomplete=False,
                              max_queries=docpairs.max_queries) if scored_pairs else [])
    query_text, qrels = collections.queries(dataset), collections.qrels(dataset)
    split = split_training_queries(ordered_unique(q for q, _, _ in itertools.chain(rows, scored)), settings,
                                   query_text, qrels)
    rank_of = {q: i for i, q in enumerate(split.train_order)}  # validation queries are not in it: never trained on
    candidates = rerank_candidates(split, settings, dataset, query_text, student_ranking)
    stats = write_split(split, candidates, settings, outputs)
    rows = _in_train_order(rows, rank_of)
    _write_triples(outputs["triples"], rows)
    if scored_pairs:
        scored = _in_train_order(scored, rank_of)
        _write_triples(outputs["scored_triples"], scored)
        _write_stats(outputs["scored_stats"], {
            "mode": "docpairs", "negatives_source": "teacher_scores_file", "teacher_scores_file": str(scored_pairs),
            "triples": len(scored), "docpairs_per_query": docpairs.per_query,
            **_coverage(scored, split.train_order)}, start)
    stats |= {"mode": "docpairs", "negatives_source": "docpairs", "triples": len(rows),
              "docpairs_per_query": docpairs.per_query, **_coverage(rows, split.train_order)}
    return _write_stats(outputs["stats"], stats, start)


def _in_train_order(rows: list[tuple[str, str, str]], rank_of: dict[str, int]) -> list[tuple[str, str, str]]:
    """The rows of training queries, by the query's place in the train order (stable: file order within a query)."""
    return sorted((t for t in rows if t[0] in rank_of), key=lambda t: rank_of[t[0]])


class _Docpairs:
    """A re-iterable view of a dataset's docpairs as (qid, pos_id, neg_id) (group_docpairs reads it twice)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        return ((pair.query_id, pair.doc_id_a, pair.doc_id_b) for pair in self.dataset.docpairs_iter())


def _write_triples(path: str | Path, rows: list[tuple[str, str, str]]) -> None:
    if not rows:
        raise ValueError("no training triple was produced")
    write_tsv(path, ["qid", "pos_id", "neg_id"], rows)


def _coverage(rows: list[tuple[str, str, str]], train_order: Sequence[str]) -> dict:
    return {"train_queries": len(train_order), "train_queries_with_triples": len({q for q, _, _ in rows})}


def _write_stats(path: str | Path, stats: dict, start: float) -> dict:
    stats["seconds"] = round(time.perf_counter() - start, 2)
    write_json(path, stats)
    log.info("training data: %s", stats)
    return stats
