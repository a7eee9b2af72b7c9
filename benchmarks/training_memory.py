"""Host memory and time of a train job's start at MS MARCO scale: loading the training data, then the batch plan and
the first batch, for the compact representation (``margin_retrieval.training.data``: int32 triples, a float32 teacher
array, texts fetched when tokenized, a bounded token cache) and the one it replaced (tuples of strings, a dict of
teacher scores keyed by them, every triple's text in a dict), on synthetic docpairs of realistic shape: 128 pairs per
query, MS MARCO-like numeric ids (queries up to 1.2M, passages up to 8.8M), teacher scores as float64 text, a fake
docstore of ~60-word passages, 43 validation queries x 1000 candidates (TREC DL 2019's size).

Each (representation, size) runs in a fresh process; its peak RSS (``VmHWM``) is reported above the process's
RSS after its imports (numpy, torch), and a line through the sizes projects the peak to 50M triples. The old
representation's token cache (every text tokenized in a job kept as a list of Python ints) is not built: its cost per
passage is measured on 20K rows and multiplied by the distinct passages of the run.

Usage (the run of benchmarks/results/training_memory.txt):
    python benchmarks/training_memory.py --sizes 500000 1000000 2000000 --out benchmarks/results/training_memory.txt
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAPER_TRIPLES = 50_000_000
PAIRS_PER_QUERY = 128
PASSAGES = 8_841_823
BUDGET_GIB = 16
TRIPLE_BYTES = 20  # three int32 indices and two float32 scores
TOKENS_PER_PASSAGE = 80  # MS MARCO passages: ~60 words, ~80 WordPiece tokens
GIB = 1024 ** 3
WORDS = [f"w{i}" for i in range(5000)]


def fake_text(doc_id: str) -> str:
    rng = random.Random(doc_id)
    return " ".join(rng.choice(WORDS) for _ in range(60))


def fake_tokenize(texts: list[str], max_length: int) -> list[list[int]]:
    return [[1000 + int(word[1:]) for word in text.split()][:max_length] for text in texts]


def write_files(directory: Path, n_triples: int) -> None:
    from margin_retrieval.jobs.io import write_json, write_tsv

    rng = random.Random(n_triples)
    n_queries = -(-n_triples // PAIRS_PER_QUERY)
    qids = [str(q) for q in rng.sample(range(1_200_000), n_queries)]
    rows, scores = [], []
    for i in range(n_triples):
        qid = qids[i // PAIRS_PER_QUERY]
        rows.append((qid, str(rng.randrange(PASSAGES)), str(rng.randrange(PASSAGES))))
        scores.append((*rows[-1], repr(rng.uniform(0, 20)), repr(rng.uniform(-10, 10))))
    write_tsv(directory / "triples.tsv", ["qid", "pos_id", "neg_id"], rows)
    write_tsv(directory / "teacher.tsv", ["qid", "pos_id", "neg_id", "teacher_pos", "teacher_neg"], scores)
    validation = [f"v{i}" for i in range(43)]
    write_json(directory / "splits.json", {"train_order": qids, "validation": validation})
    write_tsv(directory / "candidates.tsv", ["qid", "doc_id"],
              [(q, str(rng.randrange(PASSAGES))) for q in validation for _ in range(1000)])
    write_json(directory / "queries.json", {q: f"query {q}" for q in qids + validation})


def rss_kib() -> int:
    """This process's peak RSS (VmHWM) in KiB. Not ``ru_maxrss``: Linux carries it over ``execve`` from the parent,
    whose peak (writing the files) would hide the worker's."""
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))


def worker(directory: Path, representation: str) -> dict:
    """Load and start in this process; return seconds and peak RSS (GiB) above the post-import baseline."""
    import numpy as np
    import torch  # noqa: F401 (a train job has it loaded: the baseline includes it)

    from margin_retrieval.jobs.io import read_json
    from margin_retrieval.training.batching import RandomBatches
    from benchmarks.common import train_config

    config = train_config(batch_size=64)
    query_text = read_json(directory / "queries.json")
    baseline = rss_kib()
    start = time.perf_counter()
    if representation == "new":
        from margin_retrieval.training.data import load_training_data
        from margin_retrieval.training.tokens import TokenCache

        data = load_training_data(directory / "triples.tsv", directory / "splits.json", directory / "candidates.tsv",
                                  1.0, query_text, {}, lambda ids: {i: fake_text(i) for i in ids},
                                  teacher_path=directory / "teacher.tsv")
        n_triples, distinct_docs = len(data.triples), len(data.triples.doc_ids)
    else:
        data = old_load(directory, query_text)
        n_triples, distinct_docs = len(data["triples"]), len(data["doc_text"])
    loaded = time.perf_counter()
    load_peak = rss_kib()
    plan = RandomBatches(n_triples, config)
    indices = plan(0)
    if representation == "new":
        qids, pos, neg = data.batch(indices)
        docs = TokenCache(fake_tokenize, data.doc_text, config.max_doc_length)
        rows = docs.rows(pos) + docs.rows(neg)
        targets = torch.from_numpy(data.teacher(indices))
    else:
        batch = [data["triples"][i] for i in indices]
        rows = fake_tokenize([data["doc_text"][d] for _, p, n in batch for d in (p, n)], config.max_doc_length)
        targets = torch.tensor([data["teacher"][t] for t in batch])
    assert len(rows) == 2 * len(indices) and targets.shape == (len(indices), 2) and np.isfinite(targets).all()
    return {"triples": n_triples, "distinct_docs": distinct_docs, "load_s": loaded - start,
            "start_s": time.perf_counter() - start, "baseline_gib": baseline * 1024 / GIB,
            "load_gib": (load_peak - baseline) * 1024 / GIB, "start_gib": (rss_kib() - baseline) * 1024 / GIB}


def old_load(directory: Path, query_text: dict) -> dict:
    """The replaced ``load_training_data``: rows as dicts, tuples, a dict of teacher scores, every text resolved."""
    from margin_retrieval.jobs.io import read_tsv

    triples = [(r["qid"], r["pos_id"], r["neg_id"]) for r in read_tsv(directory / "triples.tsv")]
    teacher = {(r["qid"], r["pos_id"], r["neg_id"]): (float(r["teacher_pos"]), float(r["teacher_neg"]))
               for r in read_tsv(directory / "teacher.tsv")}
    candidates = {}
    for row in read_tsv(directory / "candidates.tsv"):
        candidates.setdefault(row["qid"], []).append(row["doc_id"])
    needed = {d for _, p, n in triples for d in (p, n)} | {d for docs in candidates.values() for d in docs}
    doc_text = {i: fake_text(i) for i in sorted(needed)}
    queries = {q: query_text[q] for q in {q for q, _, _ in triples} | set(candidates)}
    return {"triples": triples, "teacher": teacher, "doc_text": doc_text, "queries": queries}


def token_row_bytes() -> dict[str, float]:
    """Bytes per cached passage of ``TOKENS_PER_PASSAGE`` ids: a list of Python ints (the old cache) and an int32
    array (the bounded one)."""
    import numpy as np

    out = {}
    for name, make in (("list", lambda r: [30000 + r.randrange(1000) + i for i in range(TOKENS_PER_PASSAGE)]),
                       ("int32", lambda r: np.array([30000 + r.randrange(1000) + i for i in range(TOKENS_PER_PASSAGE)],
                                                    dtype=np.int32))):
        rng = random.Random(0)
        tracemalloc.start()
        rows = {str(i): make(rng) for i in range(20000)}
        out[name] = tracemalloc.get_traced_memory()[0] / len(rows)
        tracemalloc.stop()
        del rows
    return out


def slope(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares line (intercept, per triple) through (triples, GiB)."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    per = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else my / mx
    return my - per * mx, per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500_000, 1_000_000, 2_000_000])
    parser.add_argument("--old-max", type=int, default=2_000_000, help="largest size the old representation runs at")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", nargs=2, metavar=("DIR", "REPRESENTATION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.worker[0]), args.worker[1])))
        return
    from benchmarks.common import Report

    args.threads, args.reps = 1, 1
    report = Report("Training data at MS MARCO scale: host memory and time of a train job's start", args,
                    setting="each (representation, size) in a fresh process; peak RSS above the post-import baseline")
    results = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            write_files(Path(tmp), size)
            for representation in ("old", "new"):
                if representation == "old" and size > args.old_max:
                    continue
                done = subprocess.run([sys.executable, __file__, "--worker", tmp, representation], check=True,
                                      capture_output=True, text=True)
                results.append({"representation": representation, **json.loads(done.stdout.splitlines()[-1])})
                print(results[-1], flush=True)
    rows_bytes = token_row_bytes()
    report.table(["representation", "triples", "distinct passages", "load s", "load to first batch s",
                  "peak after load GiB", "peak after first batch GiB", "old token cache of all passages GiB"],
                 [[r["representation"], r["triples"], r["distinct_docs"], r["load_s"], r["start_s"], r["load_gib"],
                   r["start_gib"], r["distinct_docs"] * rows_bytes["list"] / GIB if r["representation"] == "old"
                   else "bounded: 100K rows"] for r in results])
    baseline = max(r["baseline_gib"] for r in results)
    report.add()
    report.add(f"post-import baseline (numpy, torch): {baseline:.2f} GiB; a cached passage of {TOKENS_PER_PASSAGE} "
               f"ids: {rows_bytes['list']:.0f} B as a list of Python ints, {rows_bytes['int32']:.0f} B as int32")
    report.add()
    report.add(f"Linear projection to {PAPER_TRIPLES / 1e6:.0f}M triples (least squares over the sizes run; distinct "
               f"passages capped at the corpus' {PASSAGES:,}):")
    for representation in ("old", "new"):
        points = [(r["triples"], r["start_gib"]) for r in results if r["representation"] == representation]
        if len(points) < 2:
            continue
        intercept, per = slope(points)
        peak = intercept + per * PAPER_TRIPLES
        if representation == "new":
            # Beyond 12 B of indices and 8 B of scores a triple, what grows is the id table and its numbering dict:
            # per distinct passage, and those stop at the corpus. Fit the passages' share on what is left.
            fixed = TRIPLE_BYTES * GIB ** -1
            passages = [(r["distinct_docs"], r["start_gib"] - fixed * r["triples"]) for r in results
                        if r["representation"] == "new"]
            intercept, per_passage = slope(passages)
            peak = intercept + fixed * PAPER_TRIPLES + per_passage * PASSAGES
        cache = PASSAGES * rows_bytes["list"] / GIB if representation == "old" else 0.0
        total = baseline + peak + cache
        report.add(f"- {representation}: {per * GIB:.0f} B per triple; start peak {peak:.1f} GiB + token cache "
                   f"{cache:.1f} GiB + baseline {baseline:.2f} GiB = {total:.1f} GiB: "
                   f"{'within' if total < BUDGET_GIB else 'over'} the {BUDGET_GIB} GiB budget")
    report.add("new: the line through the sizes, then its passage part capped at the corpus (every passage named by "
               "some triple, the worst case).")
    report.add("The old line overstates its own peak past ~4M triples: its texts grow with the distinct passages, which "
               "stop at the corpus; it is over the budget either way (the token cache of the corpus alone is above).")
    report.close()


if __name__ == "__main__":
    main()
