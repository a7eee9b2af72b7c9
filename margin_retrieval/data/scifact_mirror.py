"""Rebuild the official BEIR SciFact zip from the offline CSV mirror (``/work/shared/data/scifact``).

The mirror holds ``scifact_claimverifier.zip``, a CSV export of ``allenai/scifact``. This module turns it into the
layout of the BEIR download (``scifact/corpus.jsonl``, ``scifact/queries.jsonl``, ``scifact/qrels/{train,test}.tsv``)
so that ``ir_datasets`` serves it as its own ``beir/scifact/train`` and ``beir/scifact/test`` once the zip sits at
``$IR_DATASETS_HOME/beir/scifact/source.zip``. The counts are checked against the official BEIR ones; any difference
raises instead of producing a silently different collection.

SciFact data: CC BY-NC 2.0 (research, non-commercial use).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import tokenize
import zipfile
from pathlib import Path

from margin_retrieval.jobs.io import atomic_path

MIRROR_ZIP = "scifact_claimverifier.zip"
EXPECTED = {"docs": 5183, "train_queries": 809, "train_qrels": 919, "test_queries": 300, "test_qrels": 339}
# The mirror's "validation" claims are BEIR's test split; its "test" claims carry no labels and are not in BEIR.
SPLITS = {"train": "claims_train.csv", "test": "claims_validation.csv"}


def parse_numpy_strings(value: str) -> list[str]:
    """The sentences of a numpy array repr such as ``['s1' 's2'\\n 's3']`` (no commas, so no ``literal_eval``)."""
    sentences = []
    for token in tokenize.generate_tokens(io.StringIO(value).readline):
        if token.type == tokenize.STRING:
            sentences.append(ast.literal_eval(token.string))
    return sentences


def _read_csv(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    with archive.open(name) as handle:
        return list(csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8", newline="")))


def build_beir_files(mirror_zip: Path) -> dict[str, str]:
    """The BEIR files' contents (path inside the zip -> text), checked against the official counts."""
    with zipfile.ZipFile(mirror_zip) as archive:
        corpus = _read_csv(archive, "corpus_train.csv")
        claims = {split: _read_csv(archive, name) for split, name in SPLITS.items()}

    docs, seen_docs = [], set()
    for row in corpus:
        doc_id = row["doc_id"].strip()
        if doc_id in seen_docs:
            raise ValueError(f"{mirror_zip}: duplicate doc id {doc_id}")
        seen_docs.add(doc_id)
        text = " ".join(parse_numpy_strings(row["abstract"])).strip()
        if not text:
            raise ValueError(f"{mirror_zip}: doc {doc_id} has an empty abstract")
        docs.append({"_id": doc_id, "title": row["title"], "text": text, "metadata": {}})

    queries: dict[str, str] = {}
    qrels: dict[str, list[tuple[str, str]]] = {}
    counts = {"docs": len(docs)}
    for split, rows in claims.items():
        split_queries: dict[str, str] = {}
        pairs: dict[tuple[str, str], None] = {}  # ordered set: BEIR deduplicates (claim, cited doc)
        for row in rows:
            qid = row["id"].strip()
            split_queries.setdefault(qid, row["claim"])
            for doc_id in re.findall(r"\d+", row["cited_doc_ids"]):
                if doc_id not in seen_docs:
                    raise ValueError(f"{mirror_zip}: claim {qid} cites unknown doc {doc_id}")
                pairs[(qid, doc_id)] = None
        clash = set(split_queries) & set(queries)
        if clash:
            raise ValueError(f"{mirror_zip}: claim ids in several splits: {sorted(clash)[:5]}")
        queries.update(split_queries)
        qrels[split] = list(pairs)
        counts[f"{split}_queries"] = len(split_queries)
        counts[f"{split}_qrels"] = len(pairs)
    if counts != EXPECTED:
        raise ValueError(f"{mirror_zip}: rebuilt counts {counts} differ from the official BEIR SciFact {EXPECTED}")

    def jsonl(rows):
        return "".join(json.dumps(row) + "\n" for row in rows)

    files = {
        "scifact/corpus.jsonl": jsonl(docs),
        "scifact/queries.jsonl": jsonl(
            {"_id": qid, "text": queries[qid], "metadata": {}} for qid in sorted(queries, key=int)),
    }
    for split, pairs in qrels.items():
        lines = ["query-id\tcorpus-id\tscore\n"] + [f"{q}\t{d}\t1\n" for q, d in pairs]
        files[f"scifact/qrels/{split}.tsv"] = "".join(lines)
    return files


def rebuild_beir_zip(mirror_dir: Path, out_zip: Path) -> dict[str, int]:
    """Write the BEIR SciFact zip built from ``mirror_dir/scifact_claimverifier.zip`` to ``out_zip`` (atomically).

    Returns the counts (docs, train/test queries and qrels); raises if they differ from the official BEIR ones.
    """
    source = Path(mirror_dir) / MIRROR_ZIP
    if not source.is_file():
        raise FileNotFoundError(f"SciFact offline mirror: {source} does not exist")
    files = build_beir_files(source)
    with atomic_path(out_zip) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("scifact/", "")
        archive.writestr("scifact/qrels/", "")
        for name, text in files.items():
            archive.writestr(name, text)
    return dict(EXPECTED)
