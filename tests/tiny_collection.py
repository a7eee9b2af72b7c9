"""A tiny retrieval collection with a learnable signal: each query shares its topic words with its relevant docs."""

from __future__ import annotations

import random
from pathlib import Path

TOPICS = [
    ["cell", "protein", "gene"], ["virus", "infection", "vaccine"], ["heart", "blood", "pressure"],
    ["brain", "neuron", "memory"], ["cancer", "tumor", "therapy"], ["bone", "muscle", "growth"],
    ["lung", "breath", "oxygen"], ["diet", "sugar", "insulin"], ["sleep", "night", "clock"],
    ["skin", "light", "sun"], ["liver", "fat", "enzyme"], ["child", "birth", "mother"],
]
FILLER = ["the", "of", "and", "in", "is", "a", "study", "result", "effect", "patients", "high", "low"]


def write_collection(directory: Path, name: str, n_queries: int, seed: int) -> dict[str, str]:
    """Write docs.tsv, queries.tsv and qrels (TREC) for ``n_queries`` queries; return the spec for the config."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    docs, queries, qrels = [], [], []
    for t, topic in enumerate(TOPICS):
        for d in range(4):
            words = topic * 2 + rng.sample(FILLER, 6) + rng.sample(TOPICS[(t + 1) % len(TOPICS)], 1)
            rng.shuffle(words)
            docs.append((f"{name}-d{t}-{d}", " ".join(words)))
    for i in range(n_queries):
        t = i % len(TOPICS)
        queries.append((f"{name}-q{i}", " ".join(rng.sample(TOPICS[t], 2) + rng.sample(FILLER, 1))))
        for d in rng.sample(range(4), 2):
            qrels.append((f"{name}-q{i}", f"{name}-d{t}-{d}", 1 + (d % 2)))
    (directory / "docs.tsv").write_text("".join(f"{i}\t{text}\n" for i, text in docs))
    (directory / "queries.tsv").write_text("".join(f"{i}\t{text}\n" for i, text in queries))
    (directory / "qrels.txt").write_text("".join(f"{q} 0 {d} {r}\n" for q, d, r in qrels))
    return {"docs": str(directory / "docs.tsv"), "queries": str(directory / "queries.tsv"),
            "qrels": str(directory / "qrels.txt")}
