"""The settings of one training run: the config's ``training`` section merged with one row of the experiment grid."""

from __future__ import annotations

from dataclasses import dataclass


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
    batching: str = "random"  # random | clustered (see margin_retrieval.training.batching)

    @classmethod
    def from_config(cls, training: dict, run: dict) -> "TrainConfig":
        """Merge the config's ``training`` section with one row of the experiment grid."""
        known = set(cls.__dataclass_fields__)
        merged = {key: value for key, value in training.items() if key in known}
        merged.update(objective=run["objective"], in_batch=run["in_batch"], tau=run["tau"],
                      batching=run.get("batching", "random"))
        return cls(**merged)
