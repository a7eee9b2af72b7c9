"""Memory and throughput of corpus encoding and sharded exact search, projected to MS MARCO (8,841,823 passages).

Stages (each reports wall time and its own peak RSS; the kernel's peak counter VmHWM is reset between stages by
writing 5 to /proc/self/clear_refs, so a later stage does not inherit an earlier peak):

1. encode a synthetic corpus with a random BERT (MiniLM-L3 shape by default) through ``margin_retrieval.models.encoders``;
2. write ``--passages`` x ``--dim`` random unit vectors as ``--shards`` embedding files (fp32 and fp16), one shard in
   memory at a time, with ``margin_retrieval.jobs.io.save_embeddings`` (the encode_docs rule's format);
3. search ``--queries`` queries top-``--k`` shard by shard with ``search_shard`` and merge with ``merge_topk`` (the
   search and write_run rules), for the fp32 and the fp16 shards;
4. the competitor in the same run: one unsharded faiss ``IndexFlatIP`` over the whole matrix (skipped with
   ``--skip-unsharded`` or when it would not fit), with the overlap of its top-k and the merged one.

Usage (the full-size run of benchmarks/results/search_memory.txt):
    python benchmarks/search_memory.py --passages 1000000 --dim 384 --shards 8 --queries 1000
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MSMARCO_PASSAGES = 8_841_823
GIB = 1024 ** 3


def _status(field: str) -> int:
    """A /proc/self/status value in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class Stage:
    """Wall time and peak RSS of a block; peak = max(VmHWM after a reset, sampled VmRSS)."""

    def __init__(self, name: str):
        self.name, self.seconds, self.peak, self.start_rss = name, 0.0, 0, 0


@contextmanager
def stage(name: str, results: list[Stage]):
    record = Stage(name)
    resettable = _reset_peak()
    record.start_rss = _status("VmRSS")
    sampled = [record.start_rss]
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            sampled[0] = max(sampled[0], _status("VmRSS"))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        yield record
    finally:
        record.seconds = time.perf_counter() - start
        done.set()
        thread.join()
        hwm = _status("VmHWM") if resettable else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        record.peak = max(hwm, sampled[0])
        results.append(record)
        print(f"  [{name}] {record.seconds:.1f} s, peak RSS {record.peak / GIB:.2f} GiB "
              f"(at start {record.start_rss / GIB:.2f} GiB)", flush=True)


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def shard_sizes(n: int, shards: int) -> list[tuple[int, int]]:
    return [((i * n) // shards, ((i + 1) * n) // shards) for i in range(shards)]


# --- stage 1: encoding -------------------------------------------------------------------------------------------

def random_encoder(directory: Path, layers: int, hidden: int, heads: int, vocab_size: int, seed: int):
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from margin_retrieval.models.encoders import Encoder

    directory.mkdir(parents=True, exist_ok=True)
    words = [f"w{i}" for i in range(vocab_size)]
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab_file))
    config = BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * hidden, vocab_size=vocab_size + 5, max_position_embeddings=512)
    torch.manual_seed(seed)
    return Encoder(BertModel(config).eval(), tokenizer, "mean"), words


def synthetic_passages(rng: np.random.Generator, words: list[str], n: int, mean_words: int) -> list[str]:
    lengths = np.clip(rng.poisson(mean_words, n), 8, None)
    picks = rng.integers(0, len(words), int(lengths.sum()))
    texts, at = [], 0
    for length in lengths:
        texts.append(" ".join(words[j] for j in picks[at:at + length]))
        at += length
    return texts


# --- stages 2-4: storing and searching ---------------------------------------------------------------------------

def write_shards(directory: Path, n: int, dim: int, shards: int, fp16: bool, seed: int) -> list[Path]:
    from margin_retrieval.jobs.io import save_embeddings

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)  # same seed: the fp32 and fp16 shards hold the same vectors
    paths = []
    for index, (start, stop) in enumerate(shard_sizes(n, shards), 1):
        # narrow ids, like MS MARCO's (at most 7 characters): the id width drives the memory of the top-k lists
        ids = np.char.add("D", np.arange(start, stop).astype(str)).astype(f"U{len(str(n)) + 1}")
        rows = unit_rows(rng, stop - start, dim)
        path = directory / f"docs-{index}-of-{shards}.npz"
        save_embeddings(path, ids, rows.astype(np.float16) if fp16 else rows)
        paths.append(path)
        del rows, ids
    return paths


def sharded_search(paths: list[Path], query_ids: np.ndarray, queries: np.ndarray, k: int, threads: int):
    """The search rule for every shard in turn (one shard in memory at a time); returns the per-shard top-k."""
    from margin_retrieval.jobs.io import load_embeddings
    from margin_retrieval.retrieval.search import search_shard

    results = []
    for path in paths:
        doc_ids, docs = load_embeddings(path)
        results.append(search_shard(query_ids, queries, doc_ids, docs, k, "Flat", threads))
        del doc_ids, docs
    return results


def unsharded_search(paths: list[Path], n: int, dim: int, queries: np.ndarray, k: int, threads: int):
    import faiss

    from margin_retrieval.jobs.io import load_embeddings
    from margin_retrieval.retrieval.search import configure_faiss

    configure_faiss(threads)
    index = faiss.IndexFlatIP(dim)
    all_ids = []
    for path in paths:  # add shard by shard: the index holds the only full copy
        ids, docs = load_embeddings(path)
        index.add(np.ascontiguousarray(docs, dtype=np.float32))
        all_ids.append(ids)
        del docs
    ids = np.concatenate(all_ids)
    scores, labels = index.search(queries, k)
    return ids[labels], scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--encode-passages", type=int, default=2000, help="synthetic passages to encode (0 = skip)")
    parser.add_argument("--encode-layers", type=int, default=3, help="random BERT depth (3 = MiniLM-L3 shape)")
    parser.add_argument("--encode-words", type=int, default=60, help="mean words per passage (MS MARCO: ~56)")
    parser.add_argument("--max-length", type=int, default=200, help="token cut-off (the paper's 200)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--target-passages", type=int, default=MSMARCO_PASSAGES)
    parser.add_argument("--target-shards", type=int, default=32)
    parser.add_argument("--target-dim", type=int, default=768, help="embedding size of the paper's encoders")
    parser.add_argument("--skip-unsharded", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="where the shard files go (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import faiss
    import torch

    print(f"command: python benchmarks/search_memory.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, load average {os.getloadavg()}, "
          f"python {platform.python_version()}, torch {torch.__version__}, faiss {faiss.__version__}, "
          f"numpy {np.__version__}, MemTotal {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / GIB:.1f} GiB")
    torch.set_num_threads(args.threads)
    stages: list[Stage] = []
    rng = np.random.default_rng(args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="search_memory-"))
    report: dict[str, float] = {}

    # 1. encoding
    if args.encode_passages:
        print(f"\n1. encoding {args.encode_passages} synthetic passages (~{args.encode_words} words, cut at "
              f"{args.max_length} tokens) with a random {args.encode_layers}-layer 384-d BERT, precision "
              f"{args.precision}, batch {args.batch_size}")
        encoder, words = random_encoder(workdir / "bert", args.encode_layers, 384, 12, 5000, args.seed)
        texts = synthetic_passages(rng, words, args.encode_passages, args.encode_words)
        encoder.encode(texts[: args.batch_size], args.max_length, args.batch_size, args.precision)  # warm-up
        with stage("encode", stages) as record:
            embeddings = encoder.encode(texts, args.max_length, args.batch_size, args.precision)
        rate = len(texts) / record.seconds
        report["encode_rate"] = rate
        print(f"  {rate:.1f} passages/s -> {1_000_000 / rate / 3600:.1f} h per 1M passages, "
              f"{args.target_passages / rate / 3600:.1f} h for {args.target_passages:,} passages on this machine "
              f"(output {embeddings.shape}, {embeddings.dtype})")
        del encoder, embeddings, texts

    # 2. storing shards
    queries = unit_rows(rng, args.queries, args.dim)
    query_ids = np.array([f"Q{i}" for i in range(args.queries)])
    paths = {}
    print(f"\n2. writing {args.passages:,} x {args.dim} unit vectors as {args.shards} shards under {workdir}")
    for name, fp16 in (("fp32", False), ("fp16", True)):
        with stage(f"write {name} shards", stages):
            paths[name] = write_shards(workdir / name, args.passages, args.dim, args.shards, fp16, args.seed + 1)
        size = sum(p.stat().st_size for p in paths[name])
        report[f"disk_{name}"] = size
        print(f"  {name}: {size / GIB:.2f} GiB on disk, {size / args.shards / GIB:.3f} GiB per shard")

    # 3. sharded search + exact merge
    print(f"\n3. searching {args.queries} queries top-{args.k} shard by shard, exact merge ({args.threads} threads)")
    from margin_retrieval.retrieval.search import merge_topk

    merged = {}
    for name in ("fp32", "fp16"):
        with stage(f"sharded search {name}", stages) as record:
            per_shard = sharded_search(paths[name], query_ids, queries, args.k, args.threads)
        search_seconds, search_peak = record.seconds, record.peak
        with stage(f"merge {name}", stages) as record:
            merged[name] = merge_topk(per_shard, args.k)
        held = sum(r.doc_ids.nbytes + r.scores.nbytes for r in per_shard)
        del per_shard
        seconds = search_seconds + record.seconds
        report[f"qps_{name}"] = args.queries / seconds
        report[f"peak_{name}"] = max(search_peak, record.peak)
        print(f"  {name}: {args.queries / seconds:.1f} queries/s over {args.passages:,} passages (search + merge); "
              f"per-shard top-k lists held for the merge: {held / GIB:.2f} GiB "
              f"({held / args.shards / args.queries / args.k:.0f} bytes per entry)")
    same = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(merged["fp32"].doc_ids, merged["fp16"].doc_ids)])
    print(f"  top-{args.k} overlap fp16 shards vs fp32 shards: {same:.4f}")

    # 4. unsharded competitor
    full_bytes = args.passages * args.dim * 4
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if args.skip_unsharded or 2.5 * full_bytes > available:
        print(f"\n4. unsharded IndexFlatIP skipped ({full_bytes / GIB:.2f} GiB matrix, {available / GIB:.1f} GiB free)")
    else:
        print(f"\n4. unsharded faiss IndexFlatIP over all {args.passages:,} passages (fp32 shards loaded into one index)")
        with stage("unsharded IndexFlatIP", stages) as record:
            ids, scores = unsharded_search(paths["fp32"], args.passages, args.dim, queries, args.k, args.threads)
        qps = args.queries / record.seconds
        overlap = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(ids, merged["fp32"].doc_ids)])
        max_diff = float(np.max(np.abs(np.sort(scores, 1) - np.sort(merged["fp32"].scores, 1))))
        print(f"  {qps:.1f} queries/s; top-{args.k} overlap with the sharded merge {overlap:.6f}, "
              f"max score difference {max_diff:.2e}")
        print(f"  ratios sharded/unsharded: peak RSS fp32 {report['peak_fp32'] / record.peak:.2f}, "
              f"fp16 {report['peak_fp16'] / record.peak:.2f}; throughput fp32 {report['qps_fp32'] / qps:.2f}, "
              f"fp16 {report['qps_fp16'] / qps:.2f}")

    # projection
    n, shards, dim = args.target_passages, args.target_shards, args.target_dim
    print(f"\nprojection to {n:,} passages in {shards} shards (exact search, memory scales with the shard, time with "
          f"the corpus):")
    for d in sorted({args.dim, dim}):
        per_shard = n / shards * d
        print(f"  dim {d}: whole matrix fp32 {n * d * 4 / GIB:.1f} GiB; disk fp16 {n * d * 2 / GIB:.1f} GiB "
              f"(fp32 {n * d * 4 / GIB:.1f}); per shard {per_shard * 2 / GIB:.2f} GiB fp16 file + "
              f"{per_shard * 4 / GIB:.2f} GiB fp32 working copy")
    scale = n / args.passages * max(dim / args.dim, 1.0)
    for name in ("fp32", "fp16"):
        qps = report[f"qps_{name}"] / scale
        print(f"  {name} shards at {dim}-d: ~{qps:.1f} queries/s over the full corpus -> TREC DL 2019+2020 "
              f"(97 queries) {97 / qps / 60:.1f} min, MS MARCO dev small (6,980 queries) {6980 / qps / 3600:.1f} h "
              f"per system on this machine")
    if "encode_rate" in report:
        print(f"  encoding with the random {args.encode_layers}-layer model: {n / report['encode_rate'] / 3600:.1f} h "
              f"on this machine (a 768-d 6-12 layer encoder is several times slower: see the docs)")

    print("\nsummary (stage, seconds, peak RSS GiB):")
    for record in stages:
        print(f"  {record.name:<28} {record.seconds:8.1f} {record.peak / GIB:8.2f}")
    print(f"  process peak RSS (max over stages): {max(r.peak for r in stages) / GIB:.2f} GiB")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
