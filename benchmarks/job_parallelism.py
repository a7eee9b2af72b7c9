"""Jobs side by side: two train (or encode) jobs with one torch thread each at once, against the same two jobs one
after the other with every core, as Snakemake runs them when a rule asks for ``threads: workflow.cores``.

A job is a fresh process (imports, model load, then the work): our ``Trainer`` for ``--steps`` margin_mse steps of
batch 32, or ``Encoder.encode`` of ``--docs`` SciFact passages at each ``--batch``. Its time is the wall clock from
launching the processes to the last one's exit. Layouts interleaved rep by rep, medians.

    python benchmarks/job_parallelism.py --out benchmarks/results/job_parallelism.txt
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from common import Report, arguments, interleaved, scifact, student, training_data


def work(args) -> None:
    """One job, in its own process: ``--job train`` or ``--job encode``."""
    import torch

    torch.set_num_threads(args.threads)
    docs, queries, qrels = scifact(args.mirror)
    model = student(args.model)
    if args.job == "encode":
        from margin_retrieval.models.encoders import Encoder

        texts = [docs[d] for d in sorted(docs)[: args.docs]]
        Encoder.load(model).encode(texts, 128, args.batch, args.precision)
        return
    from train_step import BATCH, ours_block

    data = training_data(docs, queries, qrels, BATCH * args.steps)
    with tempfile.TemporaryDirectory() as scratch:
        ours_block(model, data, args.precision, args.steps, Path(scratch))()


def layout(job: list[str], processes: int, threads: int):
    """``processes`` copies of ``job`` at once with ``threads`` each, repeated until two jobs are done."""
    command = [sys.executable, __file__, "--threads", str(threads), *job]

    def run() -> None:
        for _ in range(2 // processes):
            running = [subprocess.Popen(command) for _ in range(processes)]
            if any(process.wait() for process in running):
                raise SystemExit(f"a job failed: {' '.join(command)}")

    return run


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--job", choices=["train", "encode"], help="run one job (the benchmark's own worker)")
    parser.add_argument("--steps", type=int, default=10, help="training steps of a train job")
    parser.add_argument("--docs", type=int, default=1024, help="passages of an encode job")
    parser.add_argument("--batch", type=int, default=64, help="a worker's encoding batch")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64], help="encoding batches to race")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    if args.job:
        work(args)
        return
    student(args.model)  # prepared once, before any job starts
    common = ["--model", str(args.model), "--mirror", str(args.mirror), "--precision", args.precision]
    jobs = {"train": ["--job", "train", "--steps", str(args.steps)]}
    jobs |= {f"encode, batch {b}": ["--job", "encode", "--docs", str(args.docs), "--batch", str(b)]
             for b in args.batches}
    contestants = {}
    for name, job in jobs.items():
        contestants[name, "2 jobs in sequence, 2 threads each"] = layout(job + common, 1, args.threads)
        contestants[name, "2 jobs at once, 1 thread each"] = layout(job + common, 2, 1)
    report = Report(f"Two jobs side by side: train ({args.steps} steps of 32 triples) and encode ({args.docs} "
                    f"passages, {args.precision})", args)
    seconds = interleaved(contestants, args.reps)
    rows = []
    for name in jobs:
        sequence = seconds[name, "2 jobs in sequence, 2 threads each"]
        together = seconds[name, "2 jobs at once, 1 thread each"]
        rows.append([name, sequence, together, sequence / together])
    report.table(["two jobs of", "in sequence, 2 threads each (s)", "at once, 1 thread each (s)",
                  "speed-up of at once"], rows)
    report.close()


if __name__ == "__main__":
    main()
