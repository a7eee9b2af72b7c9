"""Clusters of training examples for contextual batches (Morris & Rush 2024, "Contextual Document Embeddings").

A training example (triple q, p, n) is represented by the zero-shot student's embeddings of its **query and its
positive**: e = normalize(normalize(f(q)) + normalize(f(p))). Why both and not the query alone:
- CDE clusters (query, document) pairs, and what a batch-mate contributes to a loss is its documents (its positive
  and negative become in-batch negatives), so the topic of the documents matters as much as that of the query;
- a query alone cannot separate the triples of one query that have different positives, and SciFact's claims are
  single sentences, where the positive's abstract adds most of the topical content;
- the negative is left out: it was mined to be close to the query anyway, and it is not what makes the pair.
Cosine geometry throughout (the encoders are trained with cosine similarity), hence the normalisations and spherical
k-means.

k-means (``faiss.Kmeans``, seeded, spherical) makes about ``n / batch_size`` clusters (``n // batch_size``, so that the
average cluster fills a batch). The clusters are then renumbered along a nearest-centroid chain (start at the largest
cluster, always step to the most similar unvisited centroid), because clustered batching packs the leftovers of the
clusters in id order: neighbouring ids are neighbouring topics, so even a packed batch stays as topical as possible.

Caveat: triples that share query and positive share their point. With ``per_positive: 1`` (SciFact) that never
happens; with the MS MARCO docpairs (up to 128 triples per query and positive) a cluster, and so a batch, would hold
one query, and InfoNCE would then take the query's own positive, repeated, as in-batch negatives.

The clustering covers the triples of one data fraction (one file per model and fraction), not all triples filtered
afterwards: the number of clusters follows the fraction's size, so a small fraction still fills its batches from
single clusters instead of from the few members each full-data cluster would keep.

The embeddings are the workflow's zero-shot encodings (``results/embeddings/zeroshot/{model}/...``), the same files
that zero-shot retrieval and dense negative mining read, so the clustering encodes nothing itself.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from margin_retrieval.jobs.io import load_embeddings

Triple = tuple[str, str, str]


def _normalized(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def lookup_embeddings(wanted: Iterable[str], files: Sequence[str]) -> dict[str, np.ndarray]:
    """The embeddings of ``wanted`` ids from embedding files (read one at a time: a corpus may not fit twice)."""
    wanted = set(wanted)
    found: dict[str, np.ndarray] = {}
    for path in files:
        ids, embeddings = load_embeddings(path)
        for row, item in enumerate(ids.tolist()):
            if item in wanted:
                found[item] = np.asarray(embeddings[row], dtype=np.float32)
    missing = wanted - set(found)
    if missing:
        raise ValueError(f"{len(missing)} id(s) have no embedding in {list(files)}, e.g. {sorted(missing)[0]!r}")
    return found


def example_embeddings(triples: Sequence[Triple], query_emb: dict[str, np.ndarray],
                       doc_emb: dict[str, np.ndarray]) -> np.ndarray:
    """One vector per training example: the normalised sum of its normalised query and positive embeddings."""
    queries = _normalized(np.stack([query_emb[q] for q, _, _ in triples]))
    positives = _normalized(np.stack([doc_emb[p] for _, p, _ in triples]))
    return _normalized(queries + positives).astype(np.float32)


def n_clusters_for(n_examples: int, batch_size: int) -> int:
    """About ``n / batch_size`` clusters: rounded down, so that an average cluster fills a whole batch."""
    return max(1, n_examples // batch_size)


def kmeans(embeddings: np.ndarray, n_clusters: int, seed: int, niter: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Seeded spherical k-means: (assignment per example, centroids [n_clusters, dim])."""
    import faiss  # only this rule needs faiss; keeps the module importable without it

    model = faiss.Kmeans(embeddings.shape[1], n_clusters, niter=niter, seed=seed, spherical=True,
                         max_points_per_centroid=max(256, len(embeddings)))  # no subsampling: every example counts
    model.train(embeddings)
    _, assignment = model.index.search(embeddings, 1)
    return assignment[:, 0].astype(np.int64), model.centroids


def chain_renumbering(assignment: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Renumber the non-empty clusters 0..k-1 along a nearest-centroid chain starting at the largest cluster."""
    sizes = np.bincount(assignment, minlength=len(centroids))
    remaining = [int(c) for c in np.flatnonzero(sizes)]
    unit = _normalized(centroids)
    current = max(remaining, key=lambda c: (sizes[c], -c))
    chain = [current]
    remaining.remove(current)
    while remaining:
        similarity = unit[remaining] @ unit[current]
        current = remaining.pop(int(np.argmax(similarity)))
        chain.append(current)
    new_id = np.full(len(centroids), -1, dtype=np.int64)
    new_id[chain] = np.arange(len(chain))
    return new_id[assignment]


def cluster_examples(embeddings: np.ndarray, batch_size: int, seed: int) -> np.ndarray:
    """A cluster id per example (0..k-1, chain-numbered)."""
    assignment, centroids = kmeans(embeddings, n_clusters_for(len(embeddings), batch_size), seed)
    return chain_renumbering(assignment, centroids)


def cluster_statistics(clusters: np.ndarray, batch_size: int) -> dict:
    """Sizes of the clusters and how much of an epoch clustered batching can fill from single clusters."""
    sizes = np.bincount(clusters)
    in_full_batches = int((sizes // batch_size * batch_size).sum())
    return {
        "n_examples": int(len(clusters)),
        "batch_size": batch_size,
        "n_clusters": int(len(sizes)),
        "size_min": int(sizes.min()),
        "size_median": float(np.median(sizes)),
        "size_mean": float(sizes.mean()),
        "size_max": int(sizes.max()),
        "singletons": int((sizes == 1).sum()),
        "share_in_single_cluster_batches": in_full_batches / len(clusters),
        "sizes": sizes.tolist(),
    }
