"""Configs as the workflow sees them: validated against the schema, which fills in its defaults."""

from __future__ import annotations

import copy
from pathlib import Path

from snakemake.utils import validate

from margin_retrieval.workflow.config import Settings
from margin_retrieval.workflow.experiments import GridDefaults

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
MINIMAL = {
    "models": {"m": {"source": "./m", "pooling": "mean"}},
    "student": "m",
    "train_data": {"dataset": "beir/scifact/train"},
    "experiments": {"g": [{"objective": "adaptive"}]},
    "collections": {"c": {"dataset": "beir/scifact/test"}},
}


def validated(**sections) -> dict:
    """The minimal config with ``sections`` replacing its top-level keys, validated with the schema's defaults."""
    config = copy.deepcopy(MINIMAL) | copy.deepcopy(sections)
    validate(config, str(SCHEMA), set_default=True)
    return config


def settings(**sections) -> Settings:
    return Settings.from_config(validated(**sections))


def with_defaults(config: dict) -> dict:
    """A copy of a complete config with the schema's defaults filled in, as the workflow sees it."""
    config = copy.deepcopy(config)
    validate(config, str(SCHEMA), set_default=True)
    return config


def grid_defaults(config: dict) -> GridDefaults:
    """The defaults of the grid's columns for a complete config, as rules/common.smk derives them."""
    return GridDefaults.from_settings(Settings.from_config(with_defaults(config)))
