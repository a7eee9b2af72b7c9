"""The typed configuration: enums for every closed set of values, dataclasses for the sections the jobs read.

``Settings.from_config`` is called once, in ``rules/common.smk``, on the config that ``snakemake.utils.validate`` has
checked and filled with defaults. The schema (``schemas/config.schema.yaml``) is the one source of defaults: no field
here has a default, so a key missing from the mapping is an error, never a silent second default.

Each enum's values are the strings of the config and of the run names (``in_batch~textbook``), so a value keeps one
form from the YAML file to the loss: ``InBatch.parse`` turns the YAML booleans into that form once, at the grid.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass
from typing import Any, Mapping


class Objective(enum.StrEnum):
    """The training objective of a run (docs/method.md, "The losses")."""

    STATIC = "static"
    ADAPTIVE = "adaptive"
    DISTRIBUTED = "distributed"
    MARGIN_MSE = "margin_mse"
    INFONCE = "infonce"

    @property
    def is_margin(self) -> bool:
        """The margin objectives, the only ones with an in-batch form."""
        return self in (Objective.STATIC, Objective.ADAPTIVE, Objective.DISTRIBUTED)


class InBatch(enum.StrEnum):
    """How the margin losses use the other triples of a batch.

    ``OFF``: per triple. ``ORIGINAL``: the original code's broadcasting ``M_ij = s(q_j, p_j) - s(q_i, n_j)``.
    ``TEXTBOOK``: ``M_ij = s(q_i, p_i) - s(q_i, n_j)`` (a deviation from the original, named as such).
    """

    OFF = "false"
    ORIGINAL = "true"
    TEXTBOOK = "textbook"

    @classmethod
    def parse(cls, value: bool | str) -> "InBatch":
        """The config's ``false``/``true`` (YAML booleans) or ``textbook``, or a run name's segment."""
        if isinstance(value, bool):
            return cls.ORIGINAL if value else cls.OFF
        try:
            return cls(str(value).lower())
        except ValueError:
            raise ValueError(f"in_batch must be one of false, true, textbook; got {value!r}") from None


class ErrorFunction(enum.StrEnum):
    """E applied to margin - target: |x|, x^2, or softplus(-x)."""

    L1 = "l1"
    L2 = "l2"
    SOFT = "soft"


class Similarity(enum.StrEnum):
    """A score between two embeddings: cosine or the raw dot product."""

    COSINE = "cosine"
    DOT = "dot"


class FirstStage(enum.StrEnum):
    """A first-stage ranking of the training corpus: BM25 or the zero-shot student's dense ranking."""

    BM25 = "bm25"
    STUDENT = "student"


class Negatives(enum.StrEnum):
    """Where a run's negatives come from: mined from a first stage, or the dataset's own docpairs."""

    BM25 = "bm25"
    STUDENT = "student"
    DOCPAIRS = "docpairs"  # train_data.docpairs set: not a grid value, the only source of such a config


class Batching(enum.StrEnum):
    """How triples are grouped into batches: a seeded permutation, or clusters of similar training examples."""

    RANDOM = "random"
    CLUSTERED = "clustered"


class TeacherPairs(enum.StrEnum):
    """The triples of Margin-MSE runs with published teacher scores: the runs' own triples (each must have a score),
    or the pairs the teacher scored, grouped per query like docpairs (docs/cluster.md, "Published teacher scores")."""

    TRIPLES = "triples"
    SCORED = "scored"


class Export(enum.StrEnum):
    """Which model a run publishes: its best validation checkpoint, or the model after its last step."""

    BEST = "best"
    LAST = "last"


class Optimizer(enum.StrEnum):
    """The optimizer of training: torch's AdamW, or bitsandbytes' 8-bit AdamW (the paper's; CUDA only)."""

    ADAMW = "adamw"
    ADAMW8BIT = "adamw8bit"


@dataclass(frozen=True)
class NegativesSettings:
    source: FirstStage
    depth: int
    per_positive: int


@dataclass(frozen=True)
class ValidationSettings:
    dataset: str | None
    candidates: FirstStage
    depth: int


@dataclass(frozen=True)
class DocpairsSettings:
    per_query: int
    drop_incomplete: bool
    max_queries: int | None


@dataclass(frozen=True)
class TrainDataSettings:
    """``train_data`` without the collection keys (those go to the data rules as a spec)."""

    seed: int
    validation_queries: int
    negatives: NegativesSettings
    validation: ValidationSettings
    docpairs: DocpairsSettings | None
    teacher_similarity: Similarity
    teacher_scores_file: str | None
    teacher_pairs: TeacherPairs


@dataclass(frozen=True)
class TrainingSettings:
    """The ``training`` section: what every run shares."""

    device: str
    batch_size: int
    learning_rate: float
    learning_rates: dict  # objective -> learning rate (the grid's lr column overrides it)
    weight_decay: float
    optimizer: Optimizer
    lr_gamma: float
    warmup_steps: int
    max_epochs: int
    max_steps: int | None
    max_query_length: int
    max_doc_length: int
    error: ErrorFunction
    infonce_temperature: float
    mask_batch_positives: bool
    margin_mse_similarity: Similarity
    precision: str
    dropout_masks: str
    validate_every: int
    patience: int
    patience_steps: int | None
    min_steps: int
    min_delta: float
    early_stopping: bool
    export: Export
    checkpoint_every: int
    log_every: int
    seed: int  # the default of the grid's seed column
    batching: Batching  # the default of the grid's batching column


@dataclass(frozen=True)
class Settings:
    train_data: TrainDataSettings
    training: TrainingSettings

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Settings":
        """Build from the validated config (schema defaults filled in)."""
        return build(cls, config, "")


def build(cls: type, mapping: Mapping[str, Any] | None, path: str):
    """An instance of the dataclass ``cls`` from ``mapping``: enum fields are parsed, nested dataclasses built,
    keys that are not fields ignored (the collection keys of ``train_data``); a missing key is an error."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        key = f"{path}{field.name}"
        if mapping is None or field.name not in mapping:
            if _optional_dataclass(hints[field.name]):
                values[field.name] = None
                continue
            raise KeyError(f"config: {key} is missing (the config must be validated against the schema first)")
        values[field.name] = _convert(hints[field.name], mapping[field.name], key)
    return cls(**values)


def _optional_dataclass(hint) -> type | None:
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return args[0] if len(args) == 1 and dataclasses.is_dataclass(args[0]) else None


def _convert(hint, value, key: str):
    nested = hint if dataclasses.is_dataclass(hint) else _optional_dataclass(hint)
    if nested is not None:
        return None if value is None else build(nested, value, f"{key}.")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise ValueError(f"config: {key} must be one of {[m.value for m in hint]}, got {value!r}") from None
    return value
