"""The training loop: one bi-encoder, one objective, one data fraction.

What it guarantees, because the figures and the paper's claims are drawn from its log:
- every step is logged (step, triples seen, wall-clock seconds, loss, learning rate, target statistics);
- validation re-ranks fixed first-stage candidates of held-out training queries (never test queries), at step 0 and
  every ``validate_every`` steps; early stopping keeps the best checkpoint as the output model;
- a killed job, rerun, resumes from its last checkpoint with the same data order and random state;
- a non-finite loss stops the job with the step number in the message.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import ir_measures
import numpy as np
import torch

from margin_retrieval.encoders import Encoder, autocast_context  # noqa: F401 (re-exported)
from margin_retrieval.io import atomic_path
from margin_retrieval.losses import build_loss

log = logging.getLogger(__name__)

VALIDATION_MEASURE = ir_measures.nDCG @ 10


@dataclass
class TrainConfig:
    objective: str
    in_batch: str = "false"
    tau: float | None = None
    error: str = "l2"
    infonce_temperature: float = 0.05
    margin_mse_similarity: str = "cosine"
    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 1e-6
    lr_gamma: float = 1.0
    warmup_steps: int = 0
    max_epochs: int = 1
    max_steps: int | None = None
    max_query_length: int = 32
    max_doc_length: int = 128
    precision: str = "auto"
    validate_every: int = 10
    patience: int = 4
    checkpoint_every: int = 10
    log_every: int = 1
    seed: int = 0
    device: str = "auto"
    validation_batch_size: int = 64

    @classmethod
    def from_config(cls, training: dict, run: dict) -> "TrainConfig":
        """Merge the config's ``training`` section with one row of the experiment grid."""
        known = set(cls.__dataclass_fields__)
        merged = {key: value for key, value in training.items() if key in known}
        merged.update(objective=run["objective"], in_batch=run["in_batch"], tau=run["tau"])
        return cls(**merged)


@dataclass
class TrainingData:
    """Everything the loop reads, already resolved to text."""

    triples: list[tuple[str, str, str]]
    query_text: dict[str, str]
    doc_text: dict[str, str]
    teacher_scores: dict[tuple[str, str, str], tuple[float, float]] | None = None
    validation_candidates: dict[str, list[str]] = field(default_factory=dict)
    validation_qrels: dict[str, dict[str, int]] = field(default_factory=dict)


def resolve_device(setting: str, gpu_requested: bool) -> torch.device:
    """CUDA when asked for (by config or by the job's gpu resource), and then it must exist; else CPU."""
    cuda = torch.cuda.is_available()
    if gpu_requested and not cuda:
        raise RuntimeError(
            "this job was given the 'gpu' resource but torch sees no CUDA device "
            "(check the cluster's GPU allocation and that the CUDA build of torch is installed)"
        )
    if setting == "cuda" and not cuda:
        raise RuntimeError("config training.device is 'cuda' but torch sees no CUDA device")
    if setting == "cuda" or gpu_requested or (setting == "auto" and cuda):
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device):
    """AdamW without weight decay on LayerNorm and biases; 8-bit Adam (the paper's) when CUDA and bitsandbytes exist."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer_class = torch.optim.AdamW
    if device.type == "cuda":
        try:
            import bitsandbytes

            optimizer_class = bitsandbytes.optim.AdamW8bit
        except ImportError:
            log.info("bitsandbytes is not installed: using torch AdamW instead of 8-bit Adam")
    optimizer = optimizer_class(groups, lr=config.learning_rate)

    def factor(step: int) -> float:
        warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        return warmup * config.lr_gamma**step

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def total_steps(n_triples: int, config: TrainConfig) -> int:
    steps = config.max_epochs * math.ceil(n_triples / config.batch_size)
    return min(steps, config.max_steps) if config.max_steps else steps


def batch_indices(n_triples: int, config: TrainConfig, step: int) -> list[int]:
    """The triples of a global step: each epoch is a seeded permutation, so a resumed job sees the same batches."""
    per_epoch = math.ceil(n_triples / config.batch_size)
    epoch, position = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(config.seed + epoch)
    order = torch.randperm(n_triples, generator=generator)
    return order[position * config.batch_size : (position + 1) * config.batch_size].tolist()


def validate(encoder: Encoder, data: TrainingData, config: TrainConfig) -> float:
    """nDCG@10 of re-ranking the validation candidates (unjudged = non-relevant, as trec_eval)."""
    qids = sorted(data.validation_candidates)
    doc_ids = sorted({doc for docs in data.validation_candidates.values() for doc in docs})
    was_training = encoder.model.training
    encoder.model.eval()
    query_emb = encoder.encode([data.query_text[q] for q in qids], config.max_query_length,
                               config.validation_batch_size, config.precision)
    doc_emb = encoder.encode([data.doc_text[d] for d in doc_ids], config.max_doc_length,
                             config.validation_batch_size, config.precision)
    encoder.model.train(was_training)
    row = {doc: i for i, doc in enumerate(doc_ids)}
    run = {}
    for qi, qid in enumerate(qids):
        candidates = data.validation_candidates[qid]
        scores = doc_emb[[row[d] for d in candidates]] @ query_emb[qi]
        run[qid] = {doc: float(score) for doc, score in zip(candidates, scores)}
    qrels = {q: data.validation_qrels.get(q, {}) for q in qids}
    return float(ir_measures.calc_aggregate([VALIDATION_MEASURE], qrels, run)[VALIDATION_MEASURE])


class Trainer:
    """Runs (or resumes) one training job; ``work_dir`` holds checkpoints and the live log."""

    def __init__(self, base_model: Path, data: TrainingData, config: TrainConfig, work_dir: Path,
                 gpu_requested: bool = False):
        self.data = data
        self.config = config
        self.work_dir = Path(work_dir)
        self.device = resolve_device(config.device, gpu_requested)
        seed_everything(config.seed)
        self.encoder = Encoder.load(base_model, device=self.device)
        self.encoder.model.train()  # HF models load in eval mode: dropout would be silently off
        self.loss = build_loss(
            config.objective, tau=config.tau, in_batch=_in_batch_value(config.in_batch), error=config.error,
            temperature=config.infonce_temperature, similarity=config.margin_mse_similarity,
        )
        if self.loss.needs_teacher and data.teacher_scores is None:
            raise ValueError(f"objective {config.objective!r} needs teacher scores, none were given")
        self.optimizer, self.scheduler = build_optimizer(self.encoder.model, config, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and self._fp16())
        self.steps = total_steps(len(data.triples), config)
        self.state = {"step": 0, "seconds": 0.0, "best_value": -math.inf, "best_step": None, "bad_validations": 0,
                      "log_lines": 0}

    def _fp16(self) -> bool:
        return self.config.precision == "fp16" or self.config.precision == "auto"

    # -- paths -----------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.work_dir / "checkpoint.pt"

    @property
    def best_dir(self) -> Path:
        return self.work_dir / "best"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "train_log.jsonl"

    # -- logging and checkpoints ------------------------------------------------------------------------------
    def _log(self, event: str, **values) -> None:
        record = {"event": event, "step": self.state["step"], "triples_seen": self._triples_seen(),
                  "seconds": round(self._elapsed(), 3), **values}
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        self.state["log_lines"] += 1

    def _elapsed(self) -> float:
        """Wall-clock seconds of this job, including the runs before a resume."""
        return self.state["seconds"] + time.perf_counter() - self._clock_start

    def _triples_seen(self) -> int:
        per_epoch = math.ceil(len(self.data.triples) / self.config.batch_size)
        epochs, position = divmod(self.state["step"], per_epoch)
        return epochs * len(self.data.triples) + min(position * self.config.batch_size, len(self.data.triples))

    def _save_checkpoint(self) -> None:
        payload = {
            "model": self.encoder.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "state": {**self.state, "seconds": self._elapsed()},
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None},
            "config": asdict(self.config),
        }
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(payload, tmp)

    def _resume(self) -> bool:
        if not self.checkpoint_path.exists():
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir.mkdir(parents=True)
            return False
        payload = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        if payload["config"] != asdict(self.config):
            raise RuntimeError(f"checkpoint {self.checkpoint_path} was written with another configuration; "
                               "delete it to start over")
        self.encoder.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.scaler.load_state_dict(payload["scaler"])
        self.state = payload["state"]
        torch.set_rng_state(payload["rng"]["torch"])
        np.random.set_state(payload["rng"]["numpy"])
        random.setstate(payload["rng"]["python"])
        if payload["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
        # Drop log lines written after the checkpoint: they are about to be redone.
        lines = self.log_path.read_text().splitlines(keepends=True)[: self.state["log_lines"]]
        self.log_path.write_text("".join(lines))
        return True

    # -- the loop ---------------------------------------------------------------------------------------------
    def _validate_and_maybe_stop(self) -> bool:
        value = validate(self.encoder, self.data, self.config)
        self._log("validation", **{"nDCG@10": value})
        if value > self.state["best_value"]:
            self.state.update(best_value=value, best_step=self.state["step"], bad_validations=0)
            self.encoder.save(self.best_dir)
        else:
            self.state["bad_validations"] += 1
        return self.state["bad_validations"] >= self.config.patience

    def _train_step(self) -> None:
        config = self.config
        batch = [self.data.triples[i] for i in batch_indices(len(self.data.triples), config, self.state["step"])]
        queries = [self.data.query_text[q] for q, _, _ in batch]
        positives = [self.data.doc_text[p] for _, p, _ in batch]
        negatives = [self.data.doc_text[n] for _, _, n in batch]
        with autocast_context(self.device, config.precision):
            # Separate forwards for q, p and n: shorter padding, faster than one concatenated batch on CPU.
            q = self.encoder.embed(queries, config.max_query_length)
            p = self.encoder.embed(positives, config.max_doc_length)
            n = self.encoder.embed(negatives, config.max_doc_length)
        teacher = {}
        if self.loss.needs_teacher:
            scores = torch.tensor([self.data.teacher_scores[t] for t in batch], device=self.device)
            teacher = {"teacher_pos": scores[:, 0], "teacher_neg": scores[:, 1]}
        output = self.loss(q.float(), p.float(), n.float(), **teacher)
        if not torch.isfinite(output.loss):
            raise FloatingPointError(f"non-finite loss {output.loss.item()} at step {self.state['step'] + 1}; "
                                     "lower training.learning_rate or use training.precision: fp32")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(output.loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.state["step"] += 1
        if self.state["step"] % config.log_every == 0 or self.state["step"] == self.steps:
            targets = output.targets.detach().float() if output.targets is not None else None
            self._log("train", loss=output.loss.item(), lr=lr,
                      target_mean=None if targets is None else targets.mean().item(),
                      target_min=None if targets is None else targets.min().item(),
                      target_max=None if targets is None else targets.max().item())

    def fit(self) -> dict:
        config = self.config
        resumed = self._resume()
        self._clock_start = time.perf_counter()
        if resumed:
            self._log("resumed", from_step=self.state["step"])
            log.info("resumed from step %d of %d", self.state["step"], self.steps)
        else:
            self._log("start", total_steps=self.steps, triples=len(self.data.triples), device=str(self.device))
            self._validate_and_maybe_stop()  # step 0: the untrained model is the first candidate
            self._save_checkpoint()
        reason = "max_steps"
        while self.state["step"] < self.steps:
            self._train_step()
            stop = False
            step = self.state["step"]
            if step % config.validate_every == 0 or step == self.steps:
                stop = self._validate_and_maybe_stop()
            if stop:
                reason = "early_stopping"
                break
            if step % config.checkpoint_every == 0:
                self._save_checkpoint()
        summary = {"best_step": self.state["best_step"], "best_value": self.state["best_value"],
                   "stopped_reason": reason}
        self._log("end", **summary)
        return summary

    def export(self, model_out: Path, log_out: Path) -> None:
        """Publish the best model and the log under their final names, then drop the checkpoints."""
        with atomic_path(model_out) as tmp:
            shutil.copytree(self.best_dir, tmp)
        with atomic_path(log_out) as tmp:
            shutil.copyfile(self.log_path, tmp)
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _in_batch_value(name: str) -> bool | str:
    return {"false": False, "true": True, "textbook": "textbook"}[name]


def load_training_data(triples_path: Path, splits_path: Path, candidates_path: Path, fraction: float,
                       query_text: dict[str, str], qrels: dict[str, dict[str, int]], doc_lookup,
                       teacher_path: Path | None = None) -> TrainingData:
    """Read the training-data files of one run; ``doc_lookup(ids) -> {id: text}`` resolves only what is used.

    The fraction selects a prefix of the seeded query order, so smaller fractions are subsets of larger ones.
    """
    from margin_retrieval.experiments import fraction_size
    from margin_retrieval.io import read_json, read_tsv

    splits = read_json(splits_path)
    order = splits["train_order"]
    kept = set(order[: fraction_size(len(order), fraction)])
    triples = [(r["qid"], r["pos_id"], r["neg_id"]) for r in read_tsv(triples_path) if r["qid"] in kept]
    if not triples:
        raise ValueError(f"no training triple of {triples_path} belongs to fraction {fraction}")
    candidates: dict[str, list[str]] = {}
    for row in read_tsv(candidates_path):
        candidates.setdefault(row["qid"], []).append(row["doc_id"])
    teacher = None
    if teacher_path is not None:
        teacher = {(r["qid"], r["pos_id"], r["neg_id"]): (float(r["teacher_pos"]), float(r["teacher_neg"]))
                   for r in read_tsv(teacher_path)}
    # Validation queries may come from another dataset (TREC DL 2019 for MS MARCO): splits.json carries their texts.
    query_text = {**query_text, **splits.get("validation_queries", {})}
    qrels = {**qrels, **splits.get("validation_qrels", {})}
    needed_docs = {d for _, p, n in triples for d in (p, n)} | {d for docs in candidates.values() for d in docs}
    needed_queries = {q for q, _, _ in triples} | set(candidates)
    return TrainingData(
        triples=triples,
        query_text={q: query_text[q] for q in needed_queries},
        doc_text=doc_lookup(sorted(needed_docs)),
        teacher_scores=teacher,
        validation_candidates=candidates,
        validation_qrels={q: qrels.get(q, {}) for q in candidates},
    )
