"""The settings of one training run: the config's ``training`` section merged with one row of the experiment grid.

No field that the schema's ``training`` section defines has a default here: the schema is the one source of defaults
(``tests/test_config.py`` checks it). The section's fields are inherited from ``TrainingSettings``, so they are
declared once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from margin_retrieval.workflow.config import (Batching, ErrorFunction, Export, InBatch, Objective, Optimizer, Similarity,
                                     TrainingSettings)

# The grid columns a run sets; its seed and batching replace the section's defaults of those columns.
RUN_KEYS = ("objective", "in_batch", "tau", "batching", "seed")


@dataclass(frozen=True)
class TrainConfig(TrainingSettings):
    objective: Objective
    in_batch: InBatch
    tau: float | None
    validation_batch_size: int = 64  # not a config key: the encoding batch of validation, fixed

    def __post_init__(self):
        # Typed fields hold their enums whatever the caller passed (a string from a test, a bool from YAML).
        for name, parse in (("objective", Objective), ("in_batch", InBatch.parse), ("batching", Batching),
                            ("error", ErrorFunction), ("margin_mse_similarity", Similarity),
                            ("optimizer", Optimizer), ("export", Export)):
            object.__setattr__(self, name, parse(getattr(self, name)))

    @classmethod
    def from_config(cls, training: TrainingSettings, run: Mapping[str, Any]) -> "TrainConfig":
        """Merge the ``training`` section with one run of the experiment grid (``Run.description``); the row's
        ``lr`` is the run's learning rate."""
        return cls(**asdict(training) | {key: run[key] for key in RUN_KEYS} | {"learning_rate": run["lr"]})
