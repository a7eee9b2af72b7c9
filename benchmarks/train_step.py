"""Training step: our ``Trainer`` (margin_mse objective) against sentence-transformers' trainer (MarginMSELoss and
MultipleNegativesRankingLoss) and a plain loop (AutoModel, per-step tokenization, default AdamW), on the same SciFact
triples, the same model directory, batch 32, queries 32 / passages 128 tokens, fp32 and (where native) bf16. Ours
runs twice: as configured by default (``dropout_masks: fast``) and with torch's dropout masks, as the peers draw them.

Each contestant runs blocks of ``--steps`` steps, blocks interleaved; a block's time is the median of its steps after
the first (sentence-transformers: the time between its ``on_step_end`` callbacks, data loading included).

Beside each rate: the share of the machine's matrix-multiply rate it reaches. The work of a step is the FLOPs torch's
counter finds in one of ours (three forwards, their backward), the same nominal work for every contestant (they run
the same model on the same shapes); the rate is that of the model's own linear maps on one batch of passages
(``common.matrix_products``), timed interleaved with the contestants.

``--compile`` adds ours with the student under ``torch.compile`` (inductor, dynamic shapes: what inductor offers a CPU
for fusing the elementwise work around the matrix products, forward and backward), fp32, and reports the time its
first step spent compiling.

    python benchmarks/train_step.py --out benchmarks/results/train_step.txt
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from common import (Report, arguments, flops_of, interleaved, matrix_products, precisions, profile_shares, scifact,
                    student, train_config, training_data)

BATCH, QUERY_LENGTH, DOC_LENGTH = 32, 32, 128


def ours_block(model: Path, data, precision: str, steps: int, work: Path, dropout_masks: str = "fast",
               compiled: bool = False):
    """Our Trainer's step, the loop of ``Trainer.fit`` without its validations and checkpoints; ``compiled``: the
    student under ``torch.compile``, its first (compiling) step taken here and its time kept as ``block.compile_s``."""
    from margin_retrieval.training.trainer import Trainer

    config = train_config(objective="margin_mse", precision=precision, batch_size=BATCH, max_query_length=QUERY_LENGTH,
                         max_doc_length=DOC_LENGTH, dropout_masks=dropout_masks)
    trainer = Trainer(model, data, config, work / f"ours-{precision}-{dropout_masks}{'-compiled' if compiled else ''}")
    trainer._resume()  # creates the work directory, as fit() does
    trainer._clock_start = time.perf_counter()
    compile_s = None
    if compiled:
        trainer.encoder.model = torch.compile(trainer.encoder.model, dynamic=True)
        start = time.perf_counter()
        trainer._train_step()
        compile_s = time.perf_counter() - start

    def block() -> float:
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            trainer._train_step()
            times.append(time.perf_counter() - start)
        return statistics.median(times[1:])

    block.compile_s = compile_s
    return block


def plain_block(model: Path, data, precision: str, steps: int):
    """What a user writes in 30 lines: tokenize each batch, mean-pool, Margin-MSE on dot scores, default AdamW."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, encoder = AutoTokenizer.from_pretrained(str(model)), AutoModel.from_pretrained(str(model))
    encoder.train()
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=5e-5)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    position = [0]

    def embed(texts, max_length):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = encoder(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1)

    def step():
        indices = range(position[0], position[0] + BATCH)
        position[0] = (position[0] + BATCH) % (len(data.triples) - BATCH)
        qids, positives, negatives = data.batch(indices)
        with autocast:
            q = embed([data.query_text[i] for i in qids], QUERY_LENGTH)
            p = embed([data.doc_text[i] for i in positives], DOC_LENGTH)
            n = embed([data.doc_text[i] for i in negatives], DOC_LENGTH)
        scores = torch.from_numpy(data.teacher(indices))
        target = scores[:, 0] - scores[:, 1]
        loss = (((q * p).sum(-1) - (q * n).sum(-1) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def block() -> float:
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return statistics.median(times[1:])

    return block


def st_block(model: Path, data, precision: str, steps: int, loss_name: str, work: Path):
    """sentence-transformers' own trainer; each block is a fresh ``train()`` of ``steps`` steps."""
    from datasets import Dataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.sentence_transformer import losses
    from transformers import TrainerCallback

    st_model = SentenceTransformer(str(model), device="cpu")
    st_model.max_seq_length = DOC_LENGTH
    everything = range(len(data.triples))
    qids, positives, negatives = data.batch(everything)
    rows = {"query": [data.query_text[i] for i in qids], "positive": [data.doc_text[i] for i in positives],
            "negative": [data.doc_text[i] for i in negatives]}
    if loss_name == "MarginMSE":
        scores = data.teacher(everything)
        rows["label"] = (scores[:, 0] - scores[:, 1]).tolist()
        loss = losses.MarginMSELoss(st_model)
    else:
        loss = losses.MultipleNegativesRankingLoss(st_model)
    dataset = Dataset.from_dict(rows)

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.ends = []

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    def block() -> float:
        timer = StepTimes()
        training_args = SentenceTransformerTrainingArguments(
            output_dir=str(work / f"st-{loss_name}-{precision}"), per_device_train_batch_size=BATCH,
            max_steps=steps, learning_rate=5e-5, bf16=precision == "bf16", use_cpu=True, report_to="none",
            save_strategy="no", logging_strategy="no", dataloader_drop_last=True, disable_tqdm=True)
        SentenceTransformerTrainer(model=st_model, args=training_args, train_dataset=dataset, loss=loss,
                                   callbacks=[timer]).train()
        return statistics.median(b - a for a, b in zip(timer.ends, timer.ends[1:]))

    return block


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="steps per block (the first one is not counted)")
    parser.add_argument("--triples", type=int, default=640)
    parser.add_argument("--losses", nargs="+", default=["MarginMSE", "MNRL"], choices=["MarginMSE", "MNRL"],
                        help="sentence-transformers losses to race")
    parser.add_argument("--compile", action="store_true", help="also race ours under torch.compile (fp32)")
    parser.add_argument("--profile", action="store_true", help="also print where our step's CPU time goes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = student(args.model)
    docs, queries, qrels = scifact(args.mirror)
    data = training_data(docs, queries, qrels, args.triples)
    report = Report(f"Training step, {len(data.triples)} SciFact triples, batch {BATCH}, q {QUERY_LENGTH} / "
                    f"d {DOC_LENGTH} tokens, {args.steps} steps a block", args)
    with tempfile.TemporaryDirectory() as work:
        contestants = {}
        for precision in precisions():
            contestants["ours", precision] = ours_block(model, data, precision, args.steps, Path(work))
            # What the fast dropout masks (the default) are worth: ours with torch's dropout, as the peers draw it.
            contestants["ours, torch dropout masks", precision] = ours_block(model, data, precision, args.steps,
                                                                           Path(work), dropout_masks="torch")
            if args.compile and precision == "fp32":
                contestants["ours, torch.compile", precision] = ours_block(model, data, precision, args.steps,
                                                                          Path(work), compiled=True)
            contestants["plain loop", precision] = plain_block(model, data, precision, args.steps)
            for loss_name in args.losses:
                contestants[f"ST trainer {loss_name}", precision] = st_block(model, data, precision, args.steps,
                                                                           loss_name, Path(work))
        matrix_flops, step_flops = {}, {}
        for precision in precisions():
            contestants["matrix products", precision], matrix_flops[precision] = matrix_products(
                model, BATCH * DOC_LENGTH, precision)
            counted = ours_block(model, data, precision, args.steps, Path(work) / "counted")
            step_flops[precision] = flops_of(counted) / args.steps
        seconds = interleaved(contestants, args.reps)
    rows = []
    for precision in precisions():
        ours_rate = BATCH / seconds["ours", precision]
        matrix_rate = matrix_flops[precision] / seconds["matrix products", precision]
        report.add(f"{precision}: a step is {step_flops[precision] / 1e9:.0f} GFLOP; the machine's matrix products on "
                   f"the model's shapes run at {matrix_rate / 1e9:.1f} GFLOP/s")
        for name, p in seconds:
            if p == precision and name != "matrix products":
                rate = BATCH / seconds[name, p]
                achieved = rate / BATCH * step_flops[precision]
                rows.append([precision, name, rate, ours_rate / rate, achieved / 1e9, f"{achieved / matrix_rate:.0%}"])
    report.table(["precision", "contestant", "triples/s", "ours / contestant", "GFLOP/s", "share of matrix rate"],
                 rows)
    if args.compile:
        compiled_step = seconds["ours, torch.compile", "fp32"]
        first_step = contestants["ours, torch.compile", "fp32"].compile_s
        report.add(f"torch.compile: its first step took {first_step:.1f} s, {first_step - compiled_step:.1f} s more "
                   "than a compiled step")
    if args.profile:
        with tempfile.TemporaryDirectory() as work:
            for precision in precisions():
                profile_shares(report, f"ours, {precision}", ours_block(model, data, precision, args.steps, Path(work)))
    report.close()


if __name__ == "__main__":
    main()
