"""The student as a run trains it: loaded, scoring with its trained similarity, in train mode, with its dropout masks.

Shared by the training loop and the rule ``validate_untrained``, so that the untrained validation computed once per
student is the value a run would compute at step 0.
"""

from __future__ import annotations

from pathlib import Path

import torch

from margin_retrieval.models.dropout import use_fast_dropout
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.training.config import TrainConfig


def training_encoder(base_model: Path, config: TrainConfig, device: torch.device) -> tuple[Encoder, str]:
    """The encoder a run trains, in train mode, and the dropout masks it draws (``fast`` or ``torch``)."""
    encoder = Encoder.load(base_model, device=device)
    encoder.similarity = trained_similarity(config)  # recorded with the model; validation scores with it
    encoder.model.train()  # HF models load in eval mode: dropout would be silently off
    # The masks actually drawn, for the log: CUDA's own dropout is cheap, "fast" applies on a CPU only.
    dropout_masks = "fast" if config.dropout_masks == "fast" and device.type == "cpu" else "torch"
    if dropout_masks == "fast":
        use_fast_dropout(encoder.model)
    return encoder, dropout_masks


def validation_condition(config: TrainConfig, device: torch.device) -> dict:
    """What a validation value depends on besides the weights and the validation data."""
    return {"device": device.type, "precision": config.precision, "similarity": trained_similarity(config)}


def trained_similarity(config: TrainConfig) -> str:
    """The score the trained model is meant for: dot for the original (dot-product) Margin-MSE, else cosine."""
    if config.objective == "margin_mse" and config.margin_mse_similarity == "dot":
        return "dot"
    return "cosine"

