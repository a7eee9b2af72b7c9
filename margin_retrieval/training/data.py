"""The training data of one run: triples of the run's fraction (compact: ``margin_retrieval.training.triples``),
teacher scores aligned with them, validation candidates and qrels, cluster ids, and the texts (document texts
fetched when first tokenized: ``margin_retrieval.training.texts``)."""

from __future__ import annotations

import csv
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from margin_retrieval.workflow.experiments import fraction_size
from margin_retrieval.jobs.io import read_json, read_tsv
from margin_retrieval.training.texts import LazyTexts
from margin_retrieval.training.triples import Triples, TriplesBuilder

TRIPLE_COLUMNS = ("qid", "pos_id", "neg_id")


@dataclass
class TrainingData:
    """Everything the loop reads. ``teacher_scores`` is a float32 array [len(triples), 2] (teacher_pos, teacher_neg
    of each triple) or None. Small data built in code (tests, benchmarks) may give ``triples`` as (qid, pos_id,
    neg_id) tuples and ``teacher_scores`` as a dict keyed by them: both are converted on construction."""

    triples: Triples
    query_text: Mapping[str, str]
    doc_text: Mapping[str, str] | LazyTexts
    teacher_scores: np.ndarray | None = None
    validation_candidates: dict[str, list[str]] = field(default_factory=dict)
    validation_qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    clusters: Sequence[int] | None = None  # a cluster id per triple, for clustered batching
    # The judged positives (relevance > 0) of the training queries, which in-batch negatives leave out
    # (training.mask_batch_positives); a query without an entry has none.
    positives: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.triples, Triples):
            self.triples = Triples.from_tuples(self.triples)
        if isinstance(self.teacher_scores, Mapping):
            self.teacher_scores = np.array([self.teacher_scores[t] for t in self.triples], dtype=np.float32)

    def batch(self, indices: Sequence[int]) -> tuple[list[str], list[str], list[str]]:
        """The query, positive and negative ids of the triples at ``indices``."""
        return self.triples.batch(indices)

    def teacher(self, indices: Sequence[int]) -> np.ndarray:
        """float32 [len(indices), 2]: the teacher's (positive, negative) scores of the triples at ``indices``."""
        return self.teacher_scores[np.asarray(indices, dtype=np.int64)]


def stream_tsv(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, the values of ``columns``) of each row of a TSV with a header, streamed: a paper-scale triples
    file (tens of millions of rows) is never held as rows."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, [])
        absent = [c for c in columns if c not in header]
        if absent:
            raise ValueError(f"{path}: no column {absent[0]!r} in its header {header}")
        at = [header.index(c) for c in columns]
        for number, row in enumerate(reader, start=2):
            yield number, [row[i] for i in at]


def fraction_triples(triples_path: Path, splits_path: Path, fraction: float,
                     teacher_path: Path | None = None) -> tuple[Triples, np.ndarray | None]:
    """The triples of a data fraction, in file order: the fraction selects a prefix of the seeded query order, so
    smaller fractions are subsets of larger ones. With ``teacher_path`` (a teacher-scores TSV of the same triples file,
    row for row, as ``score_teacher`` writes it) also their scores, float32 [n, 2]; else None."""
    order = read_json(splits_path)["train_order"]
    kept = set(order[: fraction_size(len(order), fraction)])
    builder, scores = TriplesBuilder(), array("f")  # C floats, not tuples of Python floats (~100 B a triple)
    teacher_rows = None if teacher_path is None else stream_tsv(teacher_path, (*TRIPLE_COLUMNS, "teacher_pos",
                                                                                "teacher_neg"))
    for number, (qid, pos, neg) in stream_tsv(triples_path, TRIPLE_COLUMNS):
        if teacher_rows is not None:
            scores_row = _teacher_row(teacher_path, teacher_rows, triples_path, number, (qid, pos, neg))
        if qid in kept:
            builder.add(qid, pos, neg)
            if teacher_rows is not None:
                scores.extend(scores_row)
    if teacher_rows is not None and next(teacher_rows, None) is not None:
        raise ValueError(f"{teacher_path} has more rows than the triples of {triples_path}: it scores other triples")
    if not len(builder):
        raise ValueError(f"no training triple of {triples_path} belongs to fraction {fraction}")
    # float() then float32, as torch.tensor of the Python floats did: the same rounding, the same targets.
    teacher = None if teacher_path is None else np.frombuffer(scores, dtype=np.float32).reshape(-1, 2).copy()
    return builder.build(), teacher


def _teacher_row(path: Path, rows: Iterator[tuple[int, list[str]]], triples_path: Path, number: int,
                 triple: tuple[str, str, str]) -> tuple[float, float]:
    found = next(rows, None)
    if found is None or tuple(found[1][:3]) != triple:
        got = "no row" if found is None else f"line {found[0]} scores {tuple(found[1][:3])}"
        raise ValueError(f"{path}: {got}, where {triples_path}:{number} has {triple}; teacher scores must follow "
                         "the triples file row for row (they were made for other triples)")
    try:
        return float(found[1][3]), float(found[1][4])
    except ValueError:
        raise ValueError(f"{path}:{found[0]}: teacher scores {found[1][3:]!r} are not numbers") from None


def read_clusters(path: Path, triples: Triples | Sequence[tuple[str, str, str]]) -> list[int]:
    """The cluster id of each triple, aligned with ``triples``, from a clustering TSV (qid, pos_id, neg_id, cluster)."""
    by_triple = {(r["qid"], r["pos_id"], r["neg_id"]): int(r["cluster"]) for r in read_tsv(path)}
    missing = [t for t in triples if t not in by_triple]
    if missing:
        raise ValueError(f"{path}: {len(missing)} training triple(s) have no cluster, e.g. {missing[0]}; "
                         "the clustering was made for other triples or another data fraction")
    return [by_triple[t] for t in triples]


def load_validation_data(splits_path: Path, candidates_path: Path, query_text: dict[str, str],
                         qrels: dict[str, dict[str, int]], doc_lookup) -> TrainingData:
    """The validation part of the training data, without triples: the candidates, their texts, the validation
    queries and qrels (which may come from another dataset, TREC DL 2019 for MS MARCO: splits.json carries them)."""
    splits = read_json(splits_path)
    candidates: dict[str, list[str]] = {}
    for row in read_tsv(candidates_path):
        candidates.setdefault(row["qid"], []).append(row["doc_id"])
    query_text = {**query_text, **splits.get("validation_queries", {})}
    qrels = {**qrels, **splits.get("validation_qrels", {})}
    candidate_docs = sorted({d for docs in candidates.values() for d in docs})
    return TrainingData(triples=[], query_text={q: query_text[q] for q in candidates},
                        doc_text=LazyTexts(doc_lookup, doc_lookup(candidate_docs)), validation_candidates=candidates,
                        validation_qrels={q: qrels.get(q, {}) for q in candidates})


def load_training_data(triples_path: Path, splits_path: Path, candidates_path: Path, fraction: float,
                       query_text: dict[str, str], qrels: dict[str, dict[str, int]], doc_lookup,
                       teacher_path: Path | None = None, clusters_path: Path | None = None) -> TrainingData:
    """Read the training-data files of one run; ``doc_lookup(ids) -> {id: text}`` resolves the validation
    candidates now and a batch's documents when they are first tokenized (``LazyTexts``)."""
    validation = load_validation_data(splits_path, candidates_path, query_text, qrels, doc_lookup)
    triples, teacher = fraction_triples(triples_path, splits_path, fraction, teacher_path)
    train_queries = triples.query_ids.tolist()
    positives = {q: {doc for doc, rel in qrels.get(q, {}).items() if rel > 0} for q in train_queries}
    return TrainingData(
        triples=triples,
        query_text={**{q: query_text[q] for q in train_queries}, **validation.query_text},
        doc_text=validation.doc_text,
        teacher_scores=teacher,
        validation_candidates=validation.validation_candidates,
        validation_qrels=validation.validation_qrels,
        clusters=None if clusters_path is None else read_clusters(clusters_path, triples),
        positives=positives,
    )
