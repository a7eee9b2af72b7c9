"""A student's untrained validation, once per student: the step-0 validation every one of its runs would repeat."""

from __future__ import annotations

from pathlib import Path

import torch

from margin_retrieval.training.config import TrainConfig
from margin_retrieval.training.data import TrainingData
from margin_retrieval.training.student import training_encoder, validation_condition
from margin_retrieval.training.validation import save_untrained, validate


def validate_untrained(base_model: Path, data: TrainingData, config: TrainConfig, device: torch.device,
                       out: Path) -> float:
    """Validate the untrained student as a run of ``config`` would at step 0 (the same encoder, token caches and
    scoring) and save it with its condition; returns the mean nDCG@10."""
    encoder, _ = training_encoder(base_model, config, device)
    result = validate(encoder, data, config)
    save_untrained(out, result, validation_condition(config, device))
    return result.mean
