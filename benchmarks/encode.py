"""Corpus encoding: ``Encoder.encode`` (the encode_docs rule) against sentence-transformers' ``encode`` on the same
SciFact passages and the same model directory, fp32 and (where native) bf16, at batch sizes 16/32/64.

sentence-transformers in bf16 is its documented way, ``model.to(torch.bfloat16)`` (weights in bf16); ours is
autocast (``training.precision: bf16``). Embeddings are compared per passage (cosine of ours vs theirs).

sentence-transformers' ONNX backend does not install beside this project's pins (see the report), so the runtime
under it, ONNX Runtime, is measured directly in fp32 on the same model: exported with ``torch.onnx``, mean pooling
inside the graph, BERT operators fused by ``onnxruntime.transformers.optimizer`` (what the backend's O2 level does).

``--compile`` also races our encoder under ``torch.compile`` (inductor, dynamic shapes, frozen weights: what inductor
offers a CPU for fusing the elementwise work around the matrix products), fp32, with the time its first call spends
compiling, to read whether the compile pays back within one corpus encoding.

Beside each rate: the share of the machine's matrix-multiply rate it reaches, the work being the FLOPs torch's counter
finds in our encoding at that batch size (the same nominal work for every contestant) and the rate that of the
model's own linear maps on one batch of 64 passages (``common.matrix_products``), timed interleaved with them.

    python benchmarks/encode.py --docs 512 --profile --out benchmarks/results/encode.txt
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch

from common import (Report, arguments, flops_of, interleaved, matrix_products, precisions, profile_shares, scifact,
                    student)

BATCH_SIZES = (16, 32, 64)


def onnx_runtime(encoder, directory, threads: int):
    """An ONNX Runtime session of ``encoder``'s model with its mean pooling, fp32, fused; returns run(batch) -> [B, d]."""
    import onnxruntime
    from onnxruntime.transformers import optimizer

    class Pooled(torch.nn.Module):
        """The model and the encoder's own pooling, as one graph to export."""

        def __init__(self):
            super().__init__()
            self.model = encoder.model

        def forward(self, input_ids, attention_mask, token_type_ids):
            output = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return encoder._pool(output, attention_mask)

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = encoder.collate([[101, 102], [101, 1000, 102]])
    exported, fused = f"{directory}/model.onnx", f"{directory}/fused.onnx"
    torch.onnx.export(Pooled().eval(), tuple(example[n] for n in names), exported, input_names=names,
                      output_names=["pooled"], dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names},
                      opset_version=17, dynamo=False)
    config = encoder.model.config
    optimizer.optimize_model(exported, model_type="bert", num_heads=config.num_attention_heads,
                             hidden_size=config.hidden_size, opt_level=1).save_model_to_file(fused)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(fused, options, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(None, {n: batch[n].numpy() for n in names})[0]


def compiled_encoder(model):
    """Our encoder with its model under ``torch.compile``: inductor, shapes dynamic (batches differ in length),
    weights frozen into the graph (inference only), so that inductor may pack them and fuse the elementwise work
    around the matrix products."""
    import torch._inductor.config

    from margin_retrieval.models.encoders import Encoder

    torch._inductor.config.freezing = True
    encoder = Encoder.load(model)
    encoder.model = torch.compile(encoder.model, dynamic=True)
    return encoder


def encode_onnx_runtime(run, encoder, texts: list[str], max_length: int, batch_size: int) -> np.ndarray:
    """Batches as ``Encoder.encode`` makes them (longest first), normalised rows in the order of ``texts``."""
    from margin_retrieval.models.encoders import longest_first

    order = longest_first(texts)
    rows = encoder.tokenize(texts, max_length)
    out = np.empty((len(texts), encoder.dimension), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        pooled = run(encoder.collate([rows[i] for i in batch]))
        out[batch] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=512, help="passages encoded per rep (a seeded sample)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--compile", action="store_true",
                        help="also race our encoder under torch.compile (inductor, frozen weights), fp32")
    parser.add_argument("--profile", action="store_true",
                        help="also print where ours and ST's fp32 encoding at batch 64 spend their CPU time")
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
    scratch = tempfile.TemporaryDirectory()
    ort_run = onnx_runtime(ours, scratch.name, args.threads)

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
    for batch in BATCH_SIZES:
        def run_ort(b=batch):
            outputs["ort", b] = encode_onnx_runtime(ort_run, ours, texts, args.max_length, b)

        contestants["ort", batch] = run_ort
    first_compiled_call = None
    if args.compile:
        compiled = compiled_encoder(model)
        start = time.perf_counter()
        compiled.encode(texts, args.max_length, 64, "fp32")  # compiles once: its shapes are dynamic
        first_compiled_call = time.perf_counter() - start
        for batch in BATCH_SIZES:
            def run_compiled(b=batch):
                outputs["compiled", b] = compiled.encode(texts, args.max_length, b, "fp32")

            contestants["compiled", batch] = run_compiled
    matrix_flops, encode_flops = {}, {}
    for precision in precisions():
        contestants["matrix products", precision], matrix_flops[precision] = matrix_products(
            model, 64 * args.max_length, precision)
        for batch in BATCH_SIZES:
            encode_flops[precision, batch] = flops_of(contestants["ours", precision, batch])
    seconds = interleaved(contestants, args.reps)
    matrix_rate = {p: matrix_flops[p] / seconds["matrix products", p] for p in precisions()}

    def share(precision: str, batch: int, contestant_seconds: float) -> str:
        return f"{encode_flops[precision, batch] / contestant_seconds / matrix_rate[precision]:.0%}"

    for precision in precisions():
        report.add(f"{precision}: encoding the {args.docs} passages is {encode_flops[precision, 64] / 1e9:.0f} GFLOP "
                   f"at batch 64; the machine's matrix products on the model's shapes run at "
                   f"{matrix_rate[precision] / 1e9:.1f} GFLOP/s")
    rows = []
    for precision in precisions():
        best_st = max(args.docs / seconds["st", precision, b] for b in BATCH_SIZES)
        for batch in BATCH_SIZES:
            ours_rate = args.docs / seconds["ours", precision, batch]
            st_rate = args.docs / seconds["st", precision, batch]
            cosine = np.sum(outputs["ours", precision, batch] * outputs["st", precision, batch], axis=1)
            rows.append([precision, batch, ours_rate, share(precision, batch, seconds["ours", precision, batch]),
                         st_rate, share(precision, batch, seconds["st", precision, batch]), ours_rate / st_rate,
                         ours_rate / best_st, f"{1 - cosine.min():.1e}"])
    report.table(["precision", "batch", "ours passages/s", "ours share of matrix rate", "ST encode passages/s",
                  "ST share of matrix rate", "ratio (same batch)", "ratio vs ST's best batch",
                  "max 1 - cos(ours, ST)"], rows)
    ort_rows = []
    for batch in BATCH_SIZES:
        ort_rate = args.docs / seconds["ort", batch]
        ours_rate = args.docs / seconds["ours", "fp32", batch]
        cosine = np.sum(outputs["ours", "fp32", batch] * outputs["ort", batch], axis=1)
        ort_rows.append([batch, ours_rate, ort_rate, share("fp32", batch, seconds["ort", batch]),
                         ours_rate / ort_rate, f"{1 - cosine.min():.1e}"])
    report.table(["batch", "ours fp32 passages/s", "ONNX Runtime fp32 (fused) passages/s", "ORT share of matrix rate",
                  "ratio ours / ORT", "max 1 - cos(ours, ORT)"], ort_rows)
    if args.compile:
        compile_time = first_compiled_call - seconds["compiled", 64]  # the first call's time beyond a warm call's
        compiled_rows = []
        for batch in BATCH_SIZES:
            eager_seconds, compiled_seconds = seconds["ours", "fp32", batch], seconds["compiled", batch]
            cosine = np.sum(outputs["ours", "fp32", batch] * outputs["compiled", batch], axis=1)
            saved_per_passage = (eager_seconds - compiled_seconds) / args.docs
            payback = f"{compile_time / saved_per_passage:,.0f}" if saved_per_passage > 0 else "never"
            compiled_rows.append([batch, args.docs / eager_seconds, args.docs / compiled_seconds,
                                  share("fp32", batch, compiled_seconds), eager_seconds / compiled_seconds, payback,
                                  f"{1 - cosine.min():.1e}"])
        report.add(f"torch.compile: the first call spent {compile_time:.1f} s compiling (beyond a warm call at "
                   "batch 64); a SciFact corpus encoding is 5,183 passages")
        report.table(["batch", "ours fp32 passages/s", "ours compiled passages/s", "compiled share of matrix rate",
                      "compiled / eager", "passages to pay back the compile", "max 1 - cos(compiled, eager)"],
                     compiled_rows)
    if args.profile:
        for name, run in (("ours", lambda: ours.encode(texts, args.max_length, 64, "fp32")),
                          ("ST encode", lambda: theirs["fp32"].encode(texts, batch_size=64))):
            matrix = profile_shares(report, f"{name}, fp32, batch 64", run)
            report.add(f"{name}, fp32, batch 64: matrix products (mm, addmm, bmm, fused attention) {matrix:.0%} "
                       "of self CPU time")
    report.add("ST's ONNX and OpenVINO backends are not run as such: they need optimum-onnx (pins transformers < 4.58) "
               "or optimum-intel[openvino] (replaces torch 2.13 with 2.14.1 and transformers 5.23 with 5.5.4; pip "
               "--dry-run, 2026-12-02), neither installs beside this project's pins. The second table runs the ONNX "
               "backend's runtime (ONNX Runtime, fused BERT graph) on the same batches instead.")
    report.close()
    scratch.cleanup()


if __name__ == "__main__":
    main()
