"""The typed config: the schema is the one source of defaults, and every enum has the schema's values."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import yaml

from margin_retrieval.workflow.config import (Batching, ErrorFunction, FirstStage, InBatch, Negatives, Objective, Optimizer,
                                     Settings, Similarity, TrainDataSettings, TrainingSettings)
from margin_retrieval.training import losses, teacher
from margin_retrieval.training.config import TrainConfig
from tests.configs import SCHEMA, validated

PROPERTIES = yaml.safe_load(SCHEMA.read_text())["properties"]
TRAINING = PROPERTIES["training"]["properties"]
TRAIN_DATA = PROPERTIES["train_data"]["properties"]
GRID = PROPERTIES["experiments"]["additionalProperties"]["items"]["properties"]


def values(enum) -> set[str]:
    return {member.value for member in enum}


def grid_values(column: str) -> set[str]:
    single, listed = GRID[column]["oneOf"]
    assert set(single["enum"]) == set(listed["items"]["enum"])
    return set(single["enum"])


def test_schema_enums_are_the_python_enums():
    assert set(TRAINING["error"]["enum"]) == values(ErrorFunction)
    assert set(TRAINING["margin_mse_similarity"]["enum"]) == values(Similarity)
    assert set(TRAINING["optimizer"]["enum"]) == values(Optimizer)
    assert set(TRAIN_DATA["teacher_similarity"]["enum"]) == values(Similarity)
    assert set(TRAINING["batching"]["enum"]) == grid_values("batching") == values(Batching)
    assert set(TRAIN_DATA["negatives"]["properties"]["source"]["enum"]) == grid_values("negatives") \
        == values(FirstStage) == values(Negatives) - {"docpairs"}
    assert set(TRAIN_DATA["validation"]["properties"]["candidates"]["enum"]) == values(FirstStage)


def test_enums_round_trip_through_their_config_strings():
    for enum in (Objective, InBatch, ErrorFunction, Similarity, FirstStage, Negatives, Batching, Optimizer):
        for member in enum:
            assert enum(member.value) is member and f"{member}" == member.value
    assert [InBatch.parse(v) for v in (False, True, "textbook", "false", "True")] == \
        [InBatch.OFF, InBatch.ORIGINAL, InBatch.TEXTBOOK, InBatch.OFF, InBatch.ORIGINAL]
    with pytest.raises(ValueError, match="in_batch must be one of"):
        InBatch.parse("sometimes")
    assert {o for o in Objective if o.is_margin} == {Objective.STATIC, Objective.ADAPTIVE, Objective.DISTRIBUTED}


def test_settings_hold_the_schema_defaults():
    settings = Settings.from_config(validated())
    assert settings.train_data.validation_queries == TRAIN_DATA["validation_queries"]["default"] == 50
    assert settings.train_data.validation.depth == TRAIN_DATA["validation"]["properties"]["depth"]["default"] == 10
    assert settings.train_data.docpairs is None
    for name, spec in TRAINING.items():
        assert getattr(settings.training, name) == spec["default"], name
    assert settings.training.margin_mse_similarity is Similarity.COSINE  # typed, the schema's value


def test_no_code_default_disagrees_with_the_schema():
    """Fails when a default is added in the code that is not the schema's: the settings and TrainConfig have none
    for config keys, and the loss builder's defaults are the schema's training defaults."""
    for cls in (Settings, TrainDataSettings, TrainingSettings):
        assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   for f in dataclasses.fields(cls)), cls
    train_config_defaults = {f.name for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    assert not train_config_defaults & set(TRAINING), train_config_defaults & set(TRAINING)
    loss_keys = {"error": TRAINING["error"], "temperature": TRAINING["infonce_temperature"],
                 "similarity": TRAINING["margin_mse_similarity"]}
    schema_of = {function: loss_keys for function in (
        losses.build_loss, losses.MarginLoss, losses.StaticMarginLoss, losses.DistributedMarginLoss,
        losses.MarginMSELoss, losses.InfoNCELoss)}
    schema_of[teacher.score_triples] = {"similarity": TRAIN_DATA["teacher_similarity"],
                                        "precision": TRAINING["precision"]}
    for function, keys in schema_of.items():
        for name, parameter in inspect.signature(function).parameters.items():
            if name in keys and parameter.default not in (inspect.Parameter.empty, None):
                assert parameter.default == keys[name]["default"], (function, name)


def test_a_missing_key_is_an_error_not_a_default():
    config = validated()
    del config["training"]["patience"]
    with pytest.raises(KeyError, match="training.patience"):
        Settings.from_config(config)
    config = validated()
    config["training"]["error"] = "l3"
    with pytest.raises(ValueError, match="training.error must be one of"):
        Settings.from_config(config)


def test_train_config_takes_the_runs_enums_and_seed():
    training = Settings.from_config(validated()).training
    run = {"objective": "static", "in_batch": True, "tau": 0.3, "batching": "clustered", "seed": 5, "lr": 2e-4}
    config = TrainConfig.from_config(training, run)
    assert (config.objective, config.in_batch, config.batching, config.seed, config.learning_rate) == \
        (Objective.STATIC, InBatch.ORIGINAL, Batching.CLUSTERED, 5, 2e-4)
    assert type(config.error) is ErrorFunction and config.batch_size == training.batch_size
