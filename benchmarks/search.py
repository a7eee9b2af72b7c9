"""Exact search: ``search_shard`` (the search rule, string doc ids in run order out) against ``torch.topk(Q @ D.T)``
(indices only) and faiss's ``knn`` alone, on the same embeddings: SciFact's shape by default (300 queries x 5,183
passages x 384, top-1000), unit vectors drawn at random, some passages duplicated so that ties occur.

Top-k agreement is counted per position against torch: the two products round differently (by ~1e-7), so documents
whose scores differ by less than that may swap places; the score gap at every disagreeing position is reported.

    python benchmarks/search.py --out benchmarks/results/search.txt
"""

from __future__ import annotations

import faiss
import numpy as np
import torch

from common import Report, arguments, interleaved


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--docs", type=int, default=5183)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from margin_retrieval.retrieval.search import search_shard

    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        x = rng.standard_normal((n, args.dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    queries, docs = unit(args.queries), unit(args.docs)
    docs[: args.docs // 100] = docs[args.docs // 100 : 2 * (args.docs // 100)]  # 1% duplicates: exact ties
    query_ids = np.array([f"q{i}" for i in range(args.queries)])
    doc_ids = np.array([str(i) for i in rng.permutation(10**7)[: args.docs]])
    row_of = {doc: i for i, doc in enumerate(doc_ids)}
    outputs = {}

    def ours():
        outputs["ours"] = search_shard(query_ids, queries, doc_ids, docs, args.k, threads=args.threads)

    def torch_topk():
        outputs["torch"] = torch.topk(torch.from_numpy(queries) @ torch.from_numpy(docs).T, args.k, dim=1)

    def faiss_knn():
        faiss.omp_set_num_threads(args.threads)
        faiss.knn(queries, docs, args.k, metric=faiss.METRIC_INNER_PRODUCT)

    seconds = interleaved({"search_shard (ours)": ours, "torch.topk(Q @ D.T)": torch_topk,
                           "faiss.knn alone": faiss_knn}, args.reps)
    report = Report(f"Exact search, {args.queries} queries x {args.docs} passages x {args.dim}, top-{args.k}", args)
    report.table(["contestant", "ms", "torch.topk time / contestant time"],
                 [[name, 1000 * s, seconds["torch.topk(Q @ D.T)"] / s] for name, s in seconds.items()])
    ours_rows = np.vectorize(row_of.get)(outputs["ours"].doc_ids)
    torch_rows = outputs["torch"].indices.numpy()
    differ = ours_rows != torch_rows
    same_sets = sum(set(a) == set(b) for a, b in zip(ours_rows, torch_rows))
    full = queries @ docs.T
    gaps = np.abs(np.take_along_axis(full, ours_rows, 1) - np.take_along_axis(full, torch_rows, 1))[differ]
    report.add(f"top-k vs torch: {differ.sum()} of {differ.size} positions differ, in {differ.any(1).sum()} queries; "
               f"same top-k set in {same_sets} of {args.queries} queries; largest score gap at a differing position "
               f"{gaps.max() if gaps.size else 0:.1e} (ties and float rounding; ours breaks ties by doc id, trec_eval's "
               "order, torch by position)")
    report.close()


if __name__ == "__main__":
    main()
