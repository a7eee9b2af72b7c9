"""GPU acceptance check of the paper's training path: randomly initialised encoders of the paper's three shapes
(DistilBERT, MPNet and RoBERTa base configs) train through our ``Trainer`` at the paper's batch (128 triples, 20-token
queries, 200-token documents) in fp16 with the GradScaler and the configured optimizer (8-bit AdamW on CUDA), once per
loss family; then a killed run resumes and must reproduce the uninterrupted one, and one shard of passages is encoded.

Nothing is downloaded: the texts are synthetic words, the tokenizer is a word-level one built here, the weights are
random. What it checks (exit status 1 when one fails, each printed as PASS/FAIL):
- every training step of every encoder x loss family has a finite loss (the scaler may skip an overflowing step, but
  not a whole run);
- kill-and-resume: a run killed between checkpoints, and one given SIGTERM (SLURM's time limit), each restarted,
  log the same losses as an uninterrupted run (relative difference <= 1e-4; whether they are bitwise equal is
  printed);
- the encoded shard in fp16 agrees with fp32 on the same GPU: cosine >= 0.999 for every passage.
It prints steps/s and peak GPU memory per encoder and loss family, encoding passages/s, and a table of them.

Without CUDA it runs the same code on the CPU at a toy size (``--cpu-smoke``: to test the script, not the GPU).

    python benchmarks/gpu_acceptance.py --out benchmarks/results/gpu_acceptance.txt
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import REPO, Report  # common also puts the repository on sys.path

# Deterministic cuBLAS for the kill-and-resume comparison; must be set before CUDA initialises.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

SHAPES = ("distilbert", "mpnet", "roberta")
# One run per loss family of the paper's grid (exp1-exp4) and the two baselines.
LOSS_FAMILIES = {
    "static": {"objective": "static", "tau": 0.2, "in_batch": False},
    "static in-batch": {"objective": "static", "tau": 0.2, "in_batch": True},
    "adaptive": {"objective": "adaptive", "tau": None, "in_batch": False},
    "adaptive in-batch": {"objective": "adaptive", "tau": None, "in_batch": True},
    "distributed": {"objective": "distributed", "tau": None, "in_batch": False},
    "margin_mse": {"objective": "margin_mse", "tau": None, "in_batch": False},
    "infonce": {"objective": "infonce", "tau": None, "in_batch": False},
}
RESUME_TOLERANCE, MIN_COSINE = 1e-4, 0.999
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass
class Size:
    batch: int
    query_length: int
    doc_length: int
    steps: int  # timed steps per encoder x loss family (after one warm-up step)
    shard: int  # passages of the encoded shard
    words: int  # vocabulary of the synthetic texts
    layers: int | None  # None: the base configs' own depth


def paper_training_settings() -> dict:
    """The ``training`` section of config/paper.yaml over the schema's defaults (the one source of defaults), read
    with yaml alone: this script must run where jsonschema is not installed."""
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    properties = schema["properties"]["training"]["properties"]
    defaults = {key: spec["default"] for key, spec in properties.items() if "default" in spec}
    return defaults | yaml.safe_load((REPO / "config" / "paper.yaml").read_text())["training"]


def train_config(size: Size, **fields):
    """The paper's training settings at this run's size, one step per log line; ``fields`` replaced."""
    from margin_retrieval.training.config import TrainConfig

    values = paper_training_settings() | {"batch_size": size.batch, "log_every": 1}
    if not torch.cuda.is_available():
        values |= {"device": "cpu", "precision": "fp32"}
    return TrainConfig(**values | fields)


# -- synthetic data and models -----------------------------------------------------------------------------------------


def synthetic_data(size: Size, n_triples: int, seed: int = 0):
    """Triples over random-word texts long enough to fill the query and document lengths, seeded teacher scores, and a
    small validation set (8 queries x 20 candidates, one relevant each) so that ``Trainer.fit`` runs as in a job."""
    from margin_retrieval.training.data import TrainingData

    rng = random.Random(seed)
    words = [f"w{i}" for i in range(size.words)]

    def text(length: int) -> str:
        return " ".join(rng.choice(words) for _ in range(length))

    n_queries = max(8, n_triples // 2)
    queries = {f"q{i}": text(size.query_length + 10) for i in range(n_queries)}
    docs = {f"d{i}": text(size.doc_length + 20) for i in range(2 * n_triples + 160)}
    doc_ids = sorted(docs)
    triples = [(f"q{i % n_queries}", doc_ids[2 * i], doc_ids[2 * i + 1]) for i in range(n_triples)]
    teacher = {t: (rng.uniform(5, 15), rng.uniform(-5, 5)) for t in triples}
    held_out = [f"v{i}" for i in range(8)]
    queries |= {q: text(size.query_length + 10) for q in held_out}
    tail = doc_ids[2 * n_triples:]
    candidates = {q: tail[20 * i : 20 * (i + 1)] for i, q in enumerate(held_out)}
    qrels = {q: {candidates[q][0]: 1} for q in held_out}
    return TrainingData(triples, queries, docs, teacher, candidates, qrels)


def word_tokenizer(size: Size):
    """A word-level tokenizer over the synthetic vocabulary ([CLS] text [SEP]); ids stay below every shape's vocab."""
    from tests.tiny_hub import word_tokenizer as tokenizer_over

    return tokenizer_over(SPECIAL + [f"w{i}" for i in range(size.words)])


def shape_config(shape: str, size: Size):
    """The base config of ``shape`` (the paper's distilbert-base-uncased, mpnet-base, roberta-base shapes)."""
    from transformers import DistilBertConfig, MPNetConfig, RobertaConfig

    config = {"distilbert": DistilBertConfig, "mpnet": MPNetConfig, "roberta": RobertaConfig}[shape]()
    config.pad_token_id = 0  # the word-level tokenizer's [PAD]; RoBERTa's positions count from it
    if size.layers:
        for key in ("num_hidden_layers", "n_layers"):
            if hasattr(config, key):
                setattr(config, key, size.layers)
    return config


def random_encoder_dir(shape: str, size: Size, directory: Path) -> Path:
    """A model directory (random weights, seeded) that ``Encoder.load`` reads like any prepared model."""
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    from margin_retrieval.models.encoders import Encoder

    transformers_logging.disable_progress_bar()  # its loading bars would bury the report
    torch.manual_seed(0)
    model = AutoModel.from_config(shape_config(shape, size))
    return Encoder(model, word_tokenizer(size), "mean").save(directory / shape)


# -- the checks --------------------------------------------------------------------------------------------------------


def logged_losses(log_path: Path) -> list[float]:
    return [e["loss"] for e in map(json.loads, log_path.read_text().splitlines()) if e["event"] == "train"]


def train_family(model_dir: Path, data, config, work: Path) -> dict:
    """One warm-up step, then ``steps`` timed steps of our Trainer; losses, steps/s, peak memory, optimizer."""
    from margin_retrieval.training.trainer import Trainer

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model_dir, data, config, work)
    trainer._resume()  # prepares the work directory, as fit() does
    trainer._clock_start = time.perf_counter()
    trainer._train_step()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(config.max_steps - 1):
        trainer._train_step()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    losses = logged_losses(trainer.log_path)
    return {
        "losses": losses, "finite": all(np.isfinite(losses)) and len(losses) == config.max_steps,
        "steps_per_s": (config.max_steps - 1) / seconds, "peak_gib": torch.cuda.max_memory_allocated() / 2**30
        if cuda else float("nan"), "optimizer": type(trainer.optimizer).__name__,
        "skipped": trainer.state["skipped_steps"],
    }


class Killed(Exception):
    """Stands for SIGKILL in the kill-and-resume check: the job dies between a checkpoint and the next one."""


def interrupted_and_resumed(model_dir: Path, data, config, work: Path, stop_after: int,
                            how: str) -> tuple[list[float], list[float]]:
    """Losses of an uninterrupted ``fit`` and of one stopped after step ``stop_after`` and run again on its work
    directory. ``how``: ``kill`` dies without warning (it resumes from its last checkpoint and drops the log lines
    written after it), ``sigterm`` gets SLURM's signal (it checkpoints after the step and exits to be requeued)."""
    import signal

    from margin_retrieval.training.interrupt import TrainingInterrupted
    from margin_retrieval.training.trainer import Trainer

    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        whole = Trainer(model_dir, data, config, work / f"{how}-whole")
        whole.fit()

        class Stopped(Trainer):
            def _train_step(self):
                super()._train_step()
                if self.state["step"] == stop_after:
                    if how == "kill":
                        raise Killed
                    os.kill(os.getpid(), signal.SIGTERM)

        try:
            Stopped(model_dir, data, config, work / f"{how}-resumed").fit()
            raise AssertionError(f"the run was not stopped by {how}")
        except (Killed, TrainingInterrupted):
            pass
        resumed = Trainer(model_dir, data, config, work / f"{how}-resumed")
        resumed.fit()
    finally:
        torch.use_deterministic_algorithms(False)
    return logged_losses(whole.log_path), logged_losses(resumed.log_path)


def encode_shard(model_dir: Path, data, size: Size) -> dict:
    """Passages/s of encoding a shard in the training precision, and its cosine to fp32 on the same device."""
    from margin_retrieval.models.encoders import Encoder

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = "fp16" if device.type == "cuda" else "fp32"
    encoder = Encoder.load(model_dir, device=device)
    texts = [data.doc_text[d] for d in sorted(data.doc_text)]
    texts = (texts * (size.shard // len(texts) + 1))[: size.shard]
    encoder.encode(texts[:256], size.doc_length, 256, precision)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    embeddings = encoder.encode(texts, size.doc_length, 256, precision)
    rate = len(texts) / (time.perf_counter() - start)
    reference = encoder.encode(texts[:512], size.doc_length, 256, "fp32")
    cosine = np.sum(embeddings[:512] * reference, axis=1)
    return {"passages_per_s": rate, "min_cosine": float(cosine.min())}


# -- the report --------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per encoder and loss family (1 warm-up)")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--losses", nargs="+", default=list(LOSS_FAMILIES), choices=list(LOSS_FAMILIES))
    parser.add_argument("--shard", type=int, default=20000, help="passages of the encoded shard")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="without CUDA: toy sizes (2 layers, batch 4, 2 steps) to test the script itself")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        print(f"no CUDA device here (torch {torch.__version__}): run this on a CUDA machine, or pass --cpu-smoke")
        return 0
    paper = paper_training_settings()
    size = (Size(paper["batch_size"], paper["max_query_length"], paper["max_doc_length"], args.steps, args.shard,
                 20000, None) if cuda
            else Size(4, paper["max_query_length"], paper["max_doc_length"], min(args.steps, 3), 64, 2000, 2))
    shown = train_config(size, **LOSS_FAMILIES["adaptive"])
    device = torch.cuda.get_device_name(0) if cuda else "CPU (smoke run, toy sizes)"
    report = Report(f"GPU acceptance: {device}; torch {torch.__version__}", args, setting=(
        f"batch {size.batch}, queries {size.query_length} tokens, documents {size.doc_length} tokens, "
        f"{size.steps} steps per run (1 warm-up), random weights, config/paper.yaml's training settings "
        f"(precision {shown.precision}, learning rate {shown.learning_rate:g})"))
    say = report.add
    try:
        import bitsandbytes

        say(f"bitsandbytes {bitsandbytes.__version__}")
    except ImportError:
        say("bitsandbytes: not installed")
    checks: dict[str, bool] = {}
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = synthetic_data(size, size.batch * size.steps)
        for shape in args.shapes:
            model_dir = random_encoder_dir(shape, size, work / "models")
            for family in args.losses:
                config = train_config(size, max_steps=size.steps, **LOSS_FAMILIES[family])
                result = train_family(model_dir, data, config, work / f"{shape}-{family}")
                checks[f"{shape} {family}: {size.steps} finite losses"] = result["finite"]
                rows.append([shape, family, f"{result['steps_per_s']:.2f}",
                             f"{result['steps_per_s'] * size.batch:.0f}", f"{result['peak_gib']:.1f}",
                             result["optimizer"], f"{result['losses'][0]:.4g} -> {result['losses'][-1]:.4g}"])
                say(f"{shape:10s} {family:18s} {result['steps_per_s']:.2f} steps/s, peak {result['peak_gib']:.1f} "
                    f"GiB, {result['optimizer']}, {result['skipped']} steps skipped by the scaler, losses "
                    f"{[round(x, 4) for x in result['losses']]}")
            shard = encode_shard(model_dir, data, size)
            checks[f"{shape} encoding: cosine(fp16, fp32) >= {MIN_COSINE} (lowest {shard['min_cosine']:.5f})"] = (
                shard["min_cosine"] >= MIN_COSINE)
            say(f"{shape:10s} encoding {size.shard} passages: {shard['passages_per_s']:.0f} passages/s")
            rows.append([shape, "encode shard", "", f"{shard['passages_per_s']:.0f} passages/s", "", "", ""])
        # Stopped after step 5 of 8 with checkpoints every 2 steps: killed, the resumed job redoes step 5 from step
        # 4's state; given SIGTERM (SLURM's time limit), it checkpoints step 5 first.
        resume_config = train_config(size, max_steps=8, max_epochs=8, checkpoint_every=2, validate_every=4,
                                     patience=100, **LOSS_FAMILIES["adaptive"])
        for how in ("kill", "sigterm"):
            whole, resumed = interrupted_and_resumed(work / "models" / args.shapes[0], data, resume_config,
                                                     work / "resume", 5, how)
            worst = max((abs(a - b) / max(abs(a), 1e-12) for a, b in zip(whole, resumed)), default=float("inf"))
            checks[f"{how} and resume ({args.shapes[0]}, adaptive, after step 5 of 8): losses equal within "
                   f"{RESUME_TOLERANCE:g} (worst {worst:.2g}, bitwise {'yes' if whole == resumed else 'no'})"] = (
                len(whole) == len(resumed) == 8 and worst <= RESUME_TOLERANCE)
    say()
    report.table(["encoder", "loss family", "steps/s", "triples/s", "peak GiB", "optimizer", "loss first -> last"],
                 rows)
    say()
    for name, passed in checks.items():
        say(f"{'PASS' if passed else 'FAIL'}: {name}")
    say(f"wall time {time.perf_counter() - started:.0f} s")
    report.close()
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
