"""When a run stops and which validation counts as an improvement, sized to the noise of validation.

A validation improves on the best only when it exceeds it by more than ``min_delta`` (set it to the measured noise
of a validation difference: a smaller rise is as likely chance as progress); the run stops once ``patience_steps``
steps have passed since the best, but never before ``min_steps``. Patience counts steps, not validations, so that a
denser validation schedule does not stop runs sooner. Without ``min_delta``/``min_steps`` and with
``patience_steps = patience x validate_every`` this is the classic rule: stop after ``patience`` validations
without a new best.
"""

from __future__ import annotations

from dataclasses import dataclass

from margin_retrieval.training.config import TrainConfig


@dataclass(frozen=True)
class StoppingRule:
    min_delta: float
    min_steps: int
    patience_steps: int
    enabled: bool = True

    @classmethod
    def from_config(cls, config: TrainConfig) -> "StoppingRule":
        patience = config.patience_steps
        if patience is None:
            patience = config.patience * config.validate_every
        return cls(float(config.min_delta), int(config.min_steps), int(patience), bool(config.early_stopping))

    def improves(self, value: float, best: float) -> bool:
        """Whether ``value`` replaces ``best`` (the first validation always does: best starts at -inf)."""
        return value > best + self.min_delta

    def should_stop(self, step: int, best_step: int) -> bool:
        return self.enabled and step >= self.min_steps and step - best_step >= self.patience_steps
