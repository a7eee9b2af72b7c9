"""Corpus encoding: ``Encoder.encode`` (the encode_docs rule) against sentence-transformers' ``encode`` on the same
SciFact passages and the same model directory, fp32 and (where native) bf16, at batch sizes 16/32/64.

sentence-transformers in bf16 is its documented way, ``model.to(torch.bfloat16)`` (weights in bf16); ours is
autocast (``training.precision: bf16``). Embeddings are compared per passage (cosine of ours vs theirs).

    python benchmarks/encode.py --docs 512 --out benchmarks/results/encode.txt
"""

from __future__ import annotations

import numpy as np
import torch

from common import Report, arguments, interleaved, precisions, scifact, student

BATCH_SIZES = (16, 32, 64)


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=512, help="passages encoded per rep (a seeded sample)")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer

    from margin_retrieval.models.encoders import Encoder

    model = student(args.model)
    docs, _, _ = scifact(args.mirror)
    rng = np.random.default_rng(0)
    texts = [docs[d] for d in rng.choice(sorted(docs), args.docs, replace=False)]
    ours = Encoder.load(model)
    theirs = {"fp32": SentenceTransformer(str(model), device="cpu")}
    if "bf16" in precisions():
        theirs["bf16"] = SentenceTransformer(str(model), device="cpu").to(torch.bfloat16)
    for peer in theirs.values():
        peer.max_seq_length = args.max_length

    report = Report(f"Corpus encoding, {args.docs} SciFact passages, max {args.max_length} tokens", args)
    contestants, outputs = {}, {}
    for precision in precisions():
        for batch in BATCH_SIZES:
            def run_ours(p=precision, b=batch):
                outputs["ours", p, b] = ours.encode(texts, args.max_length, b, p)

            def run_theirs(p=precision, b=batch):
                outputs["st", p, b] = theirs[p].encode(texts, batch_size=b, normalize_embeddings=True,
                                                      convert_to_numpy=True).astype(np.float32)

            contestants["ours", precision, batch] = run_ours
            contestants["st", precision, batch] = run_theirs
    seconds = interleaved(contestants, args.reps)
    rows = []
    for precision in precisions():
        best_st = max(args.docs / seconds["st", precision, b] for b in BATCH_SIZES)
        for batch in BATCH_SIZES:
            ours_rate = args.docs / seconds["ours", precision, batch]
            st_rate = args.docs / seconds["st", precision, batch]
            cosine = np.sum(outputs["ours", precision, batch] * outputs["st", precision, batch], axis=1)
            rows.append([precision, batch, ours_rate, st_rate, ours_rate / st_rate, ours_rate / best_st,
                         f"{1 - cosine.min():.1e}"])
    report.table(["precision", "batch", "ours passages/s", "ST encode passages/s", "ratio (same batch)",
                  "ratio vs ST's best batch", "max 1 - cos(ours, ST)"], rows)
    report.add("ST's ONNX and OpenVINO backends are not measured: they need optimum-onnx (pins transformers < 4.58) or "
               "optimum-intel[openvino] (replaces torch 2.13 with 2.14.1 and transformers 5.23 with 5.5.4; pip "
               "--dry-run, 2026-12-02), neither installs beside this project's pins.")
    report.close()


if __name__ == "__main__":
    main()
