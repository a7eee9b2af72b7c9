"""The training data of one run, resolved to text: triples of the run's fraction, validation candidates and qrels,
teacher scores, cluster ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from margin_retrieval.experiments import fraction_size
from margin_retrieval.io import read_json, read_tsv


@dataclass
class TrainingData:
    """Everything the loop reads, already resolved to text."""

    triples: list[tuple[str, str, str]]
    query_text: dict[str, str]
    doc_text: dict[str, str]
    teacher_scores: dict[tuple[str, str, str], tuple[float, float]] | None = None
    validation_candidates: dict[str, list[str]] = field(default_factory=dict)
    validation_qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    clusters: list[int] | None = None  # a cluster id per triple, for clustered batching
    # The judged positives (relevance > 0) of the training queries, which in-batch negatives leave out
    # (training.mask_batch_positives); a query without an entry has none.
    positives: dict[str, set[str]] = field(default_factory=dict)


def fraction_triples(triples_path: Path, splits_path: Path, fraction: float) -> list[tuple[str, str, str]]:
    """The triples of a data fraction, in file order: the fraction selects a prefix of the seeded query order, so
    smaller fractions are subsets of larger ones."""
    order = read_json(splits_path)["train_order"]
    kept = set(order[: fraction_size(len(order), fraction)])
    triples = [(r["qid"], r["pos_id"], r["neg_id"]) for r in read_tsv(triples_path) if r["qid"] in kept]
    if not triples:
        raise ValueError(f"no training triple of {triples_path} belongs to fraction {fraction}")
    return triples


def read_clusters(path: Path, triples: list[tuple[str, str, str]]) -> list[int]:
    """The cluster id of each triple, aligned with ``triples``, from a clustering TSV (qid, pos_id, neg_id, cluster)."""
    by_triple = {(r["qid"], r["pos_id"], r["neg_id"]): int(r["cluster"]) for r in read_tsv(path)}
    missing = [t for t in triples if t not in by_triple]
    if missing:
        raise ValueError(f"{path}: {len(missing)} training triple(s) have no cluster, e.g. {missing[0]}; "
                         "the clustering was made for other triples or another data fraction")
    return [by_triple[t] for t in triples]


def load_training_data(triples_path: Path, splits_path: Path, candidates_path: Path, fraction: float,
                       query_text: dict[str, str], qrels: dict[str, dict[str, int]], doc_lookup,
                       teacher_path: Path | None = None, clusters_path: Path | None = None) -> TrainingData:
    """Read the training-data files of one run; ``doc_lookup(ids) -> {id: text}`` resolves only what is used."""
    splits = read_json(splits_path)
    triples = fraction_triples(triples_path, splits_path, fraction)
    candidates: dict[str, list[str]] = {}
    for row in read_tsv(candidates_path):
        candidates.setdefault(row["qid"], []).append(row["doc_id"])
    teacher = None
    if teacher_path is not None:
        teacher = {(r["qid"], r["pos_id"], r["neg_id"]): (float(r["teacher_pos"]), float(r["teacher_neg"]))
                   for r in read_tsv(teacher_path)}
    positives = {q: {doc for doc, rel in qrels.get(q, {}).items() if rel > 0} for q in {q for q, _, _ in triples}}
    # Validation queries may come from another dataset (TREC DL 2019 for MS MARCO): splits.json carries their texts.
    query_text = {**query_text, **splits.get("validation_queries", {})}
    qrels = {**qrels, **splits.get("validation_qrels", {})}
    needed_docs = {d for _, p, n in triples for d in (p, n)} | {d for docs in candidates.values() for d in docs}
    needed_queries = {q for q, _, _ in triples} | set(candidates)
    return TrainingData(
        triples=triples,
        query_text={q: query_text[q] for q in needed_queries},
        doc_text=doc_lookup(sorted(needed_docs)),
        teacher_scores=teacher,
        validation_candidates=candidates,
        validation_qrels={q: qrels.get(q, {}) for q in candidates},
        clusters=None if clusters_path is None else read_clusters(clusters_path, triples),
        positives=positives,
    )
