"""The settings of one training run: the config's ``training`` section merged with one row of the experiment grid.

No field that the schema's ``training`` section defines has a default here: the schema is the one source of defaults
(``tests/test_config.py`` checks it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from margin_retrieval.config import Batching, ErrorFunction, InBatch, Objective, Similarity, TrainingSettings


@dataclass
class TrainConfig:
    # the run (one row of the experiment grid)
    objective: Objective
    in_batch: InBatch
    tau: float | None
    batching: Batching
    seed: int
    # the training section
    error: ErrorFunction
    infonce_temperature: float
    margin_mse_similarity: Similarity
    batch_size: int
    learning_rate: float
    weight_decay: float
    lr_gamma: float
    warmup_steps: int
    max_epochs: int
    max_steps: int | None
    max_query_length: int
    max_doc_length: int
    precision: str
    validate_every: int
    patience: int
    checkpoint_every: int
    log_every: int
    device: str
    validation_batch_size: int = 64  # not a config key: the encoding batch of validation, fixed

    def __post_init__(self):
        # Typed fields hold their enums whatever the caller passed (a string from a test, a bool from YAML).
        self.objective = Objective(self.objective)
        self.in_batch = InBatch.parse(self.in_batch)
        self.batching = Batching(self.batching)
        self.error = ErrorFunction(self.error)
        self.margin_mse_similarity = Similarity(self.margin_mse_similarity)

    @classmethod
    def from_config(cls, training: TrainingSettings, run: Mapping[str, Any]) -> "TrainConfig":
        """Merge the ``training`` section with one row of the experiment grid (``run_description``); the run's
        seed and batching replace the section's defaults."""
        merged = {key: value for key, value in asdict(training).items() if key in cls.__dataclass_fields__}
        run_keys = ("objective", "in_batch", "tau", "batching", "seed")
        return cls(**merged | {key: run[key] for key in run_keys})
