"""The training loop: one bi-encoder, one objective, one data fraction.

What it guarantees, because the figures and the paper's claims are drawn from its log:
- every step is logged (step, triples seen, wall-clock seconds, loss, learning rate, target statistics);
- validation re-ranks fixed first-stage candidates of held-out training queries (never test queries), at step 0 and
  every ``validate_every`` steps; early stopping (``training.stopping``: patience in steps, a minimum number of
  steps, improvements beyond ``min_delta``) keeps the best checkpoint as the output model (or the last, by
  ``export``);
- a killed job, rerun, resumes from its last checkpoint with the same data order and random state; a SIGUSR1 or
  SIGTERM (SLURM's time limit) first writes a checkpoint at the end of the current step;
- a non-finite loss stops the job with the step number in the message, except under fp16 loss scaling, where the
  GradScaler skips the step and the log counts it (``skipped_steps``; ``margin_retrieval.training.scaling``).
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from margin_retrieval.workflow.config import Export
from margin_retrieval.jobs.io import atomic_path
from margin_retrieval.models.device import cpu_description, resolve_device
from margin_retrieval.models.precision import autocast_context
from margin_retrieval.models.card import write_card
from margin_retrieval.jobs.progress import Progress
from margin_retrieval.training.batching import batch_plan, total_steps
from margin_retrieval.training.config import TrainConfig
from margin_retrieval.training.data import TrainingData
from margin_retrieval.training.interrupt import StopSignals, TrainingInterrupted
from margin_retrieval.training.losses import build_loss
from margin_retrieval.training.optim import build_optimizer
from margin_retrieval.training.positives import batch_positives
from margin_retrieval.training.scaling import check_loss, grad_scaler, scaled_step
from margin_retrieval.training.stopping import StoppingRule
from margin_retrieval.training.student import training_encoder, validation_condition
from margin_retrieval.training.validation import (ValidationResult, load_untrained, validate,
                                                  validation_token_caches)

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Runs (or resumes) one training job; ``work_dir`` holds checkpoints and the live log. ``untrained``: the
    student's untrained validation (rule ``validate_untrained``), logged as step 0 instead of validating again when
    it was computed under this run's condition (``validation_condition``)."""

    def __init__(self, base_model: Path, data: TrainingData, config: TrainConfig, work_dir: Path,
                 gpu_requested: bool = False, untrained: Path | None = None):
        self.data = data
        self.config = config
        self.work_dir = Path(work_dir)
        self.device = resolve_device(config.device, gpu_requested)
        self.untrained = untrained
        seed_everything(config.seed)
        self.encoder, self.dropout_masks = training_encoder(base_model, config, self.device)
        # Steps and validations batch from token ids: the validation texts are tokenized once per job, a batch's
        # texts when they are not among the recently used ones (margin_retrieval.training.tokens).
        self.query_tokens, self.doc_tokens = validation_token_caches(self.encoder, data, config)
        self.loss = build_loss(
            config.objective, tau=config.tau, in_batch=config.in_batch, error=config.error,
            temperature=config.infonce_temperature, similarity=config.margin_mse_similarity,
        )
        # Only losses whose negatives include other triples' documents have judged positives to leave out.
        self.mask_positives = config.mask_batch_positives and self.loss.uses_batch_negatives
        if self.loss.needs_teacher and data.teacher_scores is None:
            raise ValueError(f"objective {config.objective!r} needs teacher scores, none were given")
        self.optimizer, self.scheduler = build_optimizer(self.encoder.model, config, self.device)
        self.scaler = grad_scaler(self.device, config.precision)
        self.steps = total_steps(len(data.triples), config)
        self.batches = batch_plan(len(data.triples), config, data.clusters)
        self.stopping = StoppingRule.from_config(config)
        self.state = {"step": 0, "seconds": 0.0, "best_value": -math.inf, "best_step": None, "log_lines": 0,
                      "skipped_steps": 0}
        # Progress lines of the job log; fit() restarts it at the resumed step (set here so a bare step works too).
        self._progress = Progress(self.steps, "train", unit="steps", logger=log)

    # -- paths -----------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.work_dir / "checkpoint.pt"

    @property
    def best_dir(self) -> Path:
        return self.work_dir / "best"

    @property
    def last_dir(self) -> Path:
        return self.work_dir / "last"

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
        # RNG states must be CPU byte tensors; map_location moved them to the training device with the rest.
        torch.set_rng_state(payload["rng"]["torch"].cpu())
        np.random.set_state(payload["rng"]["numpy"])
        random.setstate(payload["rng"]["python"])
        if payload["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state_all([state.cpu() for state in payload["rng"]["cuda"]])
        # Drop log lines written after the checkpoint: they are about to be redone.
        lines = self.log_path.read_text().splitlines(keepends=True)[: self.state["log_lines"]]
        self.log_path.write_text("".join(lines))
        return True

    # -- the loop ---------------------------------------------------------------------------------------------
    def _validate_and_maybe_stop(self, result: ValidationResult | None = None) -> bool:
        """Validate (or take ``result``, the same model's validation computed elsewhere), log, keep the best."""
        if result is None:
            result = validate(self.encoder, self.data, self.config, self.query_tokens, self.doc_tokens)
        self._log("validation", **result.log_values())
        value, step = result.mean, self.state["step"]
        if self.stopping.improves(value, self.state["best_value"]):
            self.state.update(best_value=value, best_step=step)
            with atomic_path(self.best_dir) as tmp:  # a kill while saving keeps the previous best intact
                self.encoder.save(tmp)
        log.info("validation at step %d: nDCG@10 %.4f, best %.4f (step %d; a new best must exceed it by %g), "
                 "%d of %d patience steps used", step, value, self.state["best_value"], self.state["best_step"],
                 self.stopping.min_delta, step - self.state["best_step"], self.stopping.patience_steps)
        return self.stopping.should_stop(step, self.state["best_step"])

    def _train_step(self) -> None:
        config = self.config
        indices = self.batches(self.state["step"])
        qids, pos_ids, neg_ids = self.data.batch(indices)
        queries = self.query_tokens.rows(qids)
        positives = self.doc_tokens.rows(pos_ids)
        negatives = self.doc_tokens.rows(neg_ids)
        with autocast_context(self.device, config.precision):
            # Separate forwards for q, p and n: shorter padding, faster than one concatenated batch on CPU.
            q = self.encoder.embed_tokens(queries)
            p = self.encoder.embed_tokens(positives)
            n = self.encoder.embed_tokens(negatives)
        teacher = {}
        if self.loss.needs_teacher:
            scores = torch.from_numpy(self.data.teacher(indices)).to(self.device)
            teacher = {"teacher_pos": scores[:, 0], "teacher_neg": scores[:, 1]}
        masks = {}
        if self.mask_positives:
            batch = list(zip(qids, pos_ids, neg_ids))
            masks["positive_mask"] = batch_positives(batch, self.data.positives).to(self.device)
        output = self.loss(q.float(), p.float(), n.float(), **teacher, **masks)
        check_loss(output.loss, self.state["step"] + 1, self.scaler)
        if scaled_step(output.loss, self.optimizer, self.scaler):
            self.state["skipped_steps"] += 1
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.state["step"] += 1
        logged = self.state["step"] % config.log_every == 0 or self.state["step"] == self.steps
        self._progress.update(1, force=logged, extra=lambda: f"loss {output.loss.item():.4g}, lr {lr:.3g}, "
                              f"{self._progress.rate * config.batch_size:.1f} triples/s")
        if logged:
            targets = output.targets.detach().float() if output.targets is not None else None
            self._log("train", loss=output.loss.item(), lr=lr,
                      target_mean=None if targets is None else targets.mean().item(),
                      target_min=None if targets is None else targets.min().item(),
                      target_max=None if targets is None else targets.max().item(),
                      skipped_steps=self.state["skipped_steps"])

    def fit(self) -> dict:
        """Train (or resume) to the end or to early stopping. A SIGUSR1 or SIGTERM stops it after the current step
        with a checkpoint and raises ``TrainingInterrupted`` (``margin_retrieval.training.interrupt``)."""
        resumed = self._resume()
        self._clock_start = time.perf_counter()
        with StopSignals() as stop:
            if resumed:
                self._log("resumed", from_step=self.state["step"])
                log.info("resumed from step %d of %d", self.state["step"], self.steps)
            else:
                self._log("start", total_steps=self.steps, triples=len(self.data.triples), device=str(self.device),
                          cpu=cpu_description(), precision=self.config.precision, dropout_masks=self.dropout_masks,
                          optimizer=type(self.optimizer).__name__)
                self._validate_and_maybe_stop(self._untrained())  # step 0: the untrained model is a candidate
                self._save_checkpoint()
            reason = self._train_steps(stop)
        last = self.config.export == Export.LAST
        if last:
            with atomic_path(self.last_dir) as tmp:
                self.encoder.save(tmp)
        summary = {"best_step": self.state["best_step"], "best_value": self.state["best_value"],
                   "stopped_reason": reason, "skipped_steps": self.state["skipped_steps"],
                   "exported": self.config.export.value,
                   "exported_step": self.state["step"] if last else self.state["best_step"],
                   # No validation rose above the untrained model by more than min_delta: the run publishes it.
                   "kept_untrained": not last and self.state["best_step"] == 0}
        self._log("end", **summary)
        log.info("stopped (%s) at step %d of %d: best validation nDCG@10 %.4f at step %d", reason, self.state["step"],
                 self.steps, self.state["best_value"], self.state["best_step"])
        return summary

    def _untrained(self) -> ValidationResult | None:
        if self.untrained is None:
            return None
        result = load_untrained(self.untrained, validation_condition(self.config, self.device))
        if result is None:
            log.info("%s was computed under another condition than this run's %s: validating step 0 anew",
                     self.untrained, validation_condition(self.config, self.device))
        return result

    def _train_steps(self, stop: StopSignals) -> str:
        """The steps from the current one on; returns why they ended (``max_steps`` or ``early_stopping``)."""
        config = self.config
        self._progress = Progress(self.steps, "train", unit="steps", logger=log, start=self.state["step"])
        while self.state["step"] < self.steps:
            self._train_step()
            step = self.state["step"]
            if (step % config.validate_every == 0 or step == self.steps) and self._validate_and_maybe_stop():
                return "early_stopping"
            if stop.received and step < self.steps:
                # Logged before the checkpoint, so that the resumed log keeps the line.
                self._log("interrupted", signal=stop.received)
                self._save_checkpoint()
                log.warning("%s: stopped after step %d of %d with a checkpoint; rerun the job to resume",
                            stop.received, step, self.steps)
                raise TrainingInterrupted(f"{stop.received} at step {step} of {self.steps}: checkpoint "
                                          f"{self.checkpoint_path} written; rerun the job to resume from it")
            if step % config.checkpoint_every == 0:
                self._save_checkpoint()
        return "max_steps"

    def export(self, model_out: Path, log_out: Path, card: str | None = None) -> None:
        """Publish the exported model (the best checkpoint, or the last model with ``export: last``; with its model
        card ``card`` as README.md) and the log under their final names, then drop the checkpoints."""
        with atomic_path(model_out) as tmp:
            shutil.copytree(self.last_dir if self.config.export == Export.LAST else self.best_dir, tmp)
            if card is not None:
                write_card(tmp, card)
        with atomic_path(log_out) as tmp:
            shutil.copyfile(self.log_path, tmp)
        shutil.rmtree(self.work_dir, ignore_errors=True)
