"""Training step: our ``Trainer`` (margin_mse objective) against sentence-transformers' trainer (MarginMSELoss and
MultipleNegativesRankingLoss) and a plain loop (AutoModel, per-step tokenization, default AdamW), on the same SciFact
triples, the same model directory, batch 32, queries 32 / passages 128 tokens, fp32 and (where native) bf16. Ours
runs twice: as configured by default (``dropout_masks: fast``) and with torch's dropout masks, as the peers draw them.

Each contestant runs blocks of ``--steps`` steps, blocks interleaved; a block's time is the median of its steps after
the first (sentence-transformers: the time between its ``on_step_end`` callbacks, data loading included).

    python benchmarks/train_step.py --out benchmarks/results/train_step.txt
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from common import (Report, arguments, interleaved, precisions, profile_shares, scifact, student, train_config,
                    training_data)

BATCH, QUERY_LENGTH, DOC_LENGTH = 32, 32, 128


def ours_block(model: Path, data, precision: str, steps: int, work: Path, dropout_masks: str = "fast"):
    """Our Trainer's step, the loop of ``Trainer.fit`` without its validations and checkpoints."""
    from margin_retrieval.training.trainer import Trainer

    config = train_config(objective="margin_mse", precision=precision, batch_size=BATCH, max_query_length=QUERY_LENGTH,
                         max_doc_length=DOC_LENGTH, dropout_masks=dropout_masks)
    trainer = Trainer(model, data, config, work / f"ours-{precision}-{dropout_masks}")
    trainer._resume()  # creates the work directory, as fit() does
    trainer._clock_start = time.perf_counter()

    def block() -> float:
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            trainer._train_step()
            times.append(time.perf_counter() - start)
        return statistics.median(times[1:])

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
        rows = data.triples[position[0] : position[0] + BATCH]
        position[0] = (position[0] + BATCH) % (len(data.triples) - BATCH)
        with autocast:
            q = embed([data.query_text[r[0]] for r in rows], QUERY_LENGTH)
            p = embed([data.doc_text[r[1]] for r in rows], DOC_LENGTH)
            n = embed([data.doc_text[r[2]] for r in rows], DOC_LENGTH)
        target = torch.tensor([data.teacher_scores[r][0] - data.teacher_scores[r][1] for r in rows])
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
    rows = {"query": [data.query_text[q] for q, _, _ in data.triples],
            "positive": [data.doc_text[p] for _, p, _ in data.triples],
            "negative": [data.doc_text[n] for _, _, n in data.triples]}
    if loss_name == "MarginMSE":
        rows["label"] = [data.teacher_scores[t][0] - data.teacher_scores[t][1] for t in data.triples]
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
            contestants["plain loop", precision] = plain_block(model, data, precision, args.steps)
            for loss_name in args.losses:
                contestants[f"ST trainer {loss_name}", precision] = st_block(model, data, precision, args.steps,
                                                                           loss_name, Path(work))
        seconds = interleaved(contestants, args.reps)
    rows = []
    for precision in precisions():
        ours_rate = BATCH / seconds["ours", precision]
        for name, p in seconds:
            if p == precision:
                rate = BATCH / seconds[name, p]
                rows.append([precision, name, rate, ours_rate / rate])
    report.table(["precision", "contestant", "triples/s", "ours / contestant"], rows)
    if args.profile:
        with tempfile.TemporaryDirectory() as work:
            for precision in precisions():
                profile_shares(report, f"ours, {precision}", ours_block(model, data, precision, args.steps, Path(work)))
    report.close()


if __name__ == "__main__":
    main()
