"""Train one bi-encoder for one row of the experiment grid (resumes from its checkpoint when rerun)."""

from dataclasses import asdict, replace
from pathlib import Path

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

import torch

from margin_retrieval.data import collections
from margin_retrieval.models.card import trained_card
from margin_retrieval.models.device import resolve_device
from margin_retrieval.models.precision import resolve
from margin_retrieval.training.config import TrainConfig
from margin_retrieval.training.data import load_training_data
from margin_retrieval.training.interrupt import TrainingInterrupted
from margin_retrieval.training.optim import optimizer_class
from margin_retrieval.training.trainer import Trainer

gpu_requested = snakemake.resources.get("gpu", 0) > 0
device = resolve_device(snakemake.params.training.device, gpu_requested)  # no CUDA: fail before loading any data
optimizer_class(snakemake.params.training.optimizer, device)  # adamw8bit on CUDA without bitsandbytes: likewise
# `auto` becomes the precision this job computes in, so the checkpoint, the log and the model card name it.
training = snakemake.params.training
training = replace(training, precision=resolve(training.precision, device, snakemake.input.get("precision")))
torch.set_num_threads(snakemake.threads)
collections.configure_home(snakemake.params.home)
dataset = collections.load(snakemake.params.spec, snakemake.params.name)
run = snakemake.params.run
data = load_training_data(
    Path(snakemake.input.triples), Path(snakemake.input.splits), Path(snakemake.input.candidates), run["fraction"],
    query_text=collections.queries(dataset), qrels=collections.qrels(dataset),
    doc_lookup=lambda ids: collections.doc_lookup(dataset, ids),
    teacher_path=Path(snakemake.input.teacher_scores[0]) if snakemake.input.teacher_scores else None,
    clusters_path=Path(snakemake.input.clusters[0]) if snakemake.input.clusters else None,
)
untrained = snakemake.input.get("untrained")
trainer = Trainer(Path(snakemake.input.base_model), data, TrainConfig.from_config(training, run),
                  Path(snakemake.params.work_dir), gpu_requested=gpu_requested,
                  untrained=Path(untrained) if untrained else None)
try:
    summary = trainer.fit()
except TrainingInterrupted as interrupted:  # a non-zero exit: Snakemake's retries (or SLURM's requeue) resume it
    raise SystemExit(f"training interrupted by {interrupted}") from None
base = snakemake.config["models"][run["model"]]
card = trained_card(run=run, base_name=run["model"], base_source=base["source"], pooling=base["pooling"],
                    similarity=trainer.encoder.similarity, training=asdict(training),
                    train_data=snakemake.config["train_data"], summary=summary,
                    steps_done=trainer.state["step"], steps_planned=trainer.steps, triples=len(data.triples),
                    optimizer=type(trainer.optimizer).__name__)
trainer.export(Path(snakemake.output.model), Path(snakemake.output.log), card=card)
