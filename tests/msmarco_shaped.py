"""A tiny collection in the shape of MS MARCO passage, written into an ``ir_datasets`` home exactly where
``ir_datasets`` 0.6.3 expects the official downloads, so that the real ``msmarco-passage/...`` ids load offline.

``ir_datasets`` serves a file that is already in place without checking its md5 (hashes are checked only while
downloading), and every file the paper reads is either such a cached download or the ``Cache`` target of one
(``ir_datasets/datasets/msmarco_passage.py``). Relative to ``<home>/msmarco-passage/``:

====================================  =================================================================================
``irds_version.txt``                  ``v2``: without it ``ir_datasets``' Migrator deletes ``collection.tsv`` (and its
                                      docstore) before first use
``collection.tsv``                    ``pid<TAB>text``, the extracted corpus (its docstore ``collection.tsv.pklz4`` is
                                      built next to it by the download rule)
``train/queries.tsv``                 ``qid<TAB>text``
``train/qrels``                       ``qid<TAB>0<TAB>pid<TAB>1``
``train/docpairs.tsv.gz``             qidpidtriples.train.full: ``qid<TAB>pos_pid<TAB>neg_pid``, gzipped, grouped by
                                      query; some queries have more than 128 pairs, some fewer
``trec-dl-2019/queries.tsv``          all queries; only some are judged (``trec-dl-2019/judged`` filters them)
``trec-dl-2019/qrels``                ``qid Q0 pid grade``, grades 0-3
``trec-dl-2019/ms.run``               the official top-1000 as ``qid<TAB>pid`` (what ``ExtractQidPid`` caches)
``trec-dl-2020/queries.tsv.gz``       as 2019, but the queries file is the gzipped download itself
``trec-dl-2020/qrels``, ``ms.run``    as 2019
``dev/small/queries.tsv``, ``qrels``  binary qrels in the train format
====================================  =================================================================================

Deliberately absent: everything the paper never reads (the train and dev top-1000 runs, the full dev and eval
queries); a rule that touches one of them fails offline instead of downloading gigabytes on a cluster.

The teacher scores (Hofstaetter et al.'s format ``score_pos score_neg qid pos_id neg_id``) are written by one
function, :func:`write_teacher_scores`, over the pairs given to it.
"""

from __future__ import annotations

import gzip
import random
from dataclasses import dataclass, field
from pathlib import Path

from tests.tiny_collection import FILLER, TOPICS

NAME = "msmarco-passage"
# The environment of a process that reads this home: every download attempt fails at once (a proxy on a closed port)
# instead of fetching the real files where the network is open, and the disk check that ir_datasets makes before
# building the docstore (for the real 8.8M passages: 14 GB) is skipped.
OFFLINE_ENV = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
               "IR_DATASETS_SKIP_DISK_FREE": "true"}
PASSAGES_PER_TOPIC = 24  # 12 topics: 288 passages, two corpus shards of 144
# Docpairs per training query, cycling: above the paper's 128, between a small per_query and 128, below it.
PAIRS_PER_QUERY = (130, 40, 5)
TRAIN_QUERIES = 18
TREC_DL = {"trec-dl-2019": (1037000, 8, 3), "trec-dl-2020": (1100000, 6, 3)}  # first qid, judged, unjudged
DEV_SMALL_QUERIES = 10
CANDIDATES = 60  # per TREC DL query: the "official top-1000" of the tiny corpus


@dataclass
class MsMarcoShaped:
    """What was written: the home, the ids that the tests check against, and the training docpairs."""

    home: Path
    passages: list[str]
    train_queries: list[str]
    docpairs: list[tuple[str, str, str]]
    pairs_per_query: dict[str, int]
    judged: dict[str, list[str]] = field(default_factory=dict)  # collection name -> judged query ids


def _passage(rng: random.Random, topic: int) -> str:
    words = TOPICS[topic] * 2 + rng.sample(FILLER, 6) + rng.sample(TOPICS[(topic + 1) % len(TOPICS)], 1)
    rng.shuffle(words)
    return " ".join(words)


def _query(rng: random.Random, topic: int) -> str:
    return " ".join(rng.sample(TOPICS[topic], 2) + rng.sample(FILLER, 1))


def _write(path: Path, lines: list[str], gzipped: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{line}\n" for line in lines).encode()
    path.write_bytes(gzip.compress(text, mtime=0) if gzipped else text)


def write_msmarco_passage(home: Path, seed: int = 0) -> MsMarcoShaped:
    """Write the collection into ``home`` (an ``IR_DATASETS_HOME``) and return what was written."""
    rng = random.Random(seed)
    base = Path(home) / NAME
    # MS MARCO's pids are 0..N-1, but topics are not contiguous in the file: shuffle them over the ids.
    topics = [t for t in range(len(TOPICS)) for _ in range(PASSAGES_PER_TOPIC)]
    rng.shuffle(topics)
    passages = [str(pid) for pid in range(len(topics))]
    by_topic: dict[int, list[str]] = {}
    for pid, topic in zip(passages, topics):
        by_topic.setdefault(topic, []).append(pid)
    (base / "irds_version.txt").parent.mkdir(parents=True, exist_ok=True)
    (base / "irds_version.txt").write_text("v2")
    _write(base / "collection.tsv", [f"{pid}\t{_passage(rng, t)}" for pid, t in zip(passages, topics)])

    train_queries, queries, qrels, docpairs, counts = [], [], [], [], {}
    for i in range(TRAIN_QUERIES):
        qid, topic = str(121000 + 7 * i), i % len(TOPICS)
        pos = rng.choice(by_topic[topic])
        train_queries.append(qid)
        queries.append(f"{qid}\t{_query(rng, topic)}")
        qrels.append(f"{qid}\t0\t{pos}\t1")
        counts[qid] = PAIRS_PER_QUERY[i % len(PAIRS_PER_QUERY)]
        negatives = rng.sample([pid for pid in passages if pid != pos], counts[qid])
        docpairs += [(qid, pos, neg) for neg in negatives]
    _write(base / "train/queries.tsv", queries)
    _write(base / "train/qrels", qrels)
    _write(base / "train/docpairs.tsv.gz", ["\t".join(pair) for pair in docpairs], gzipped=True)

    judged = {}
    for name, (first, n_judged, n_unjudged) in TREC_DL.items():
        qids = [str(first + 11 * i) for i in range(n_judged + n_unjudged)]
        query_topics = {qid: rng.randrange(len(TOPICS)) for qid in qids}
        dl_queries = [f"{qid}\t{_query(rng, query_topics[qid])}" for qid in qids]
        dl_qrels, run = [], []
        for qid in qids:
            relevant = by_topic[query_topics[qid]]
            others = [pid for pid in passages if pid not in set(relevant)]
            candidates = rng.sample(relevant, 10) + rng.sample(others, CANDIDATES - 10)
            rng.shuffle(candidates)
            run += [f"{qid}\t{pid}" for pid in candidates]
            if qid in qids[:n_judged]:  # graded 0-3, a few unjudged candidates in between, as in the pools
                dl_qrels += [f"{qid} Q0 {pid} {3 - rank % 4}" for rank, pid in enumerate(relevant[:8])]
                dl_qrels += [f"{qid} Q0 {pid} 0" for pid in others[:4]]
        judged[name] = qids[:n_judged]
        queries_file = "queries.tsv.gz" if name == "trec-dl-2020" else "queries.tsv"
        _write(base / name / queries_file, dl_queries, gzipped=queries_file.endswith(".gz"))
        _write(base / name / "qrels", dl_qrels)
        _write(base / name / "ms.run", run)

    dev = [str(1048000 + 13 * i) for i in range(DEV_SMALL_QUERIES)]
    dev_topics = {qid: rng.randrange(len(TOPICS)) for qid in dev}
    _write(base / "dev/small/queries.tsv", [f"{qid}\t{_query(rng, dev_topics[qid])}" for qid in dev])
    _write(base / "dev/small/qrels", [f"{qid}\t0\t{rng.choice(by_topic[dev_topics[qid]])}\t1" for qid in dev])
    judged["msmarco-dev"] = dev
    return MsMarcoShaped(Path(home), passages, train_queries, docpairs, counts, judged)


def write_teacher_scores(path: Path, pairs: list[tuple[str, str, str]], seed: int = 0) -> Path:
    """Teacher scores for ``pairs`` (qid, pos_id, neg_id) in Hofstaetter et al.'s file format: tab-separated
    ``score_pos score_neg qid pos_id neg_id``, unbounded logits as the BERT-CAT ensemble gives (positives mostly
    higher)."""
    rng = random.Random(seed)
    lines = [f"{rng.uniform(2, 12):.4f}\t{rng.uniform(-6, 6):.4f}\t{q}\t{p}\t{n}" for q, p, n in pairs]
    _write(Path(path), lines)
    return Path(path)
