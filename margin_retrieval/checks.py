"""Config checks that run when the workflow reads its config, so that a mistake stops ``snakemake`` (even ``-n``)
before the first job, in a few lines that name the key or the file.

- ``check_schema``: the JSON schema (schemas/config.schema.yaml), reported as one line per problem: the key's path,
  and for an unknown key the closest valid one ("did you mean 'training'?") instead of a dump of the schema;
- ``check_values``: what the schema cannot express: the significance tests' reference, measure names (ir_measures),
  the faiss index factory string, the local files and directories the jobs will read, and whether published teacher
  scores can cover the Margin-MSE runs' triples.

faiss and ir_measures are imported inside the checks that need them: importing this module stays cheap.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import yaml

from margin_retrieval.models.source_kind import model_source_kind

# Embedding sizes tried when parsing the index string: a product quantizer (PQ<M>) needs M to divide the dimension,
# which is not known before a model is loaded, so the string counts as valid if one common dimension accepts it.
INDEX_CHECK_DIMENSIONS = (768, 1024, 384, 960)
MAX_REPORTED = 5  # schema problems shown at once; the rest are counted


class ConfigError(ValueError):
    """A config value that would make a job fail (or silently change a result) later."""


# -- the schema ------------------------------------------------------------------------------------------------------


def check_schema(config: Mapping, schema_path: str | Path) -> None:
    """Raise ConfigError with one line per schema violation of ``config`` (no schema dump)."""
    from jsonschema import Draft202012Validator

    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    lines = [line for error in errors for line in _describe(error)]
    if not lines:
        return
    shown = lines[:MAX_REPORTED]
    if len(lines) > MAX_REPORTED:
        shown.append(f"... and {len(lines) - MAX_REPORTED} more")
    raise ConfigError("invalid config (see schemas/config.schema.yaml):\n" + "\n".join(f"  {s}" for s in shown))


def _key_path(parts: Iterable) -> str:
    return ".".join(str(part) for part in parts)


def _describe(error) -> Iterator[str]:
    """One line per problem of a jsonschema ValidationError."""
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties" and error.schema.get("additionalProperties") is False:
        valid = sorted(error.schema.get("properties", {}))
        for key in sorted(set(error.instance) - set(valid)):
            path = _key_path([*error.absolute_path, key])
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
            yield f"unknown key {path!r} ({'top level' if not where else 'under ' + repr(where)}): {hint}"
        return
    if error.validator == "oneOf":  # jsonschema's own message would print the whole value
        options = " | ".join(_branch(branch) for branch in error.validator_value)
        yield f"{where or 'the config'}: expected exactly one of: {options}"
        return
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    yield f"{where or 'the config'}: {message}"


def _branch(schema: Mapping) -> str:
    """A short description of one alternative of a oneOf."""
    if "required" in schema:
        return "keys " + ", ".join(schema["required"])
    if schema.get("type") == "array":
        return f"a list of {schema.get('items', {}).get('type', 'values')}s"
    return f"a {schema.get('type', 'value')}"


# -- values the schema cannot check ------------------------------------------------------------------------------------


def check_values(config: Mapping, reference_candidates: Iterable[str], used_models: Iterable[str],
                 margin_mse: bool) -> None:
    """Cross-key and file checks; ``reference_candidates`` are the objectives and system names of the grid that
    ``analysis.reference_objective`` may name, ``used_models`` the models the DAG prepares, ``margin_mse`` whether
    the grid has a Margin-MSE run."""
    check_reference(config["analysis"]["reference_objective"], reference_candidates)
    for name, collection in config["collections"].items():
        check_measures(collection["measures"], f"collections.{name}.measures")
        check_local_files(collection, f"collections.{name}")
    check_index(config["retrieval"]["index"])
    check_local_files(config["train_data"], "train_data")
    scores_file = config["train_data"]["teacher_scores_file"]
    if scores_file and not Path(scores_file).expanduser().is_file():
        raise ConfigError(f"config train_data.teacher_scores_file: no such file: {scores_file} "
                          f"(relative paths are relative to the working directory {Path.cwd()})")
    check_teacher_pairs(config["train_data"], margin_mse)
    for model in used_models:
        try:
            model_source_kind(config["models"][model]["source"])
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(f"config models.{model}.source: {error}") from None


def check_teacher_pairs(train_data: Mapping, margin_mse: bool) -> None:
    """``train_data.teacher_pairs`` fits the rest of ``train_data``. Published scores cover the pairs their teacher
    scored: with docpairs, Margin-MSE runs on the docpairs' triples would miss most scores (Hofstaetter et al.'s MS
    MARCO scores cover triples-small, not the first 128 qidpidtriples per query), which the training-data job would
    only find after hours of preparation."""
    scored = train_data["teacher_pairs"] == "scored"
    if scored and not train_data["teacher_scores_file"]:
        raise ConfigError("config train_data.teacher_pairs: scored trains Margin-MSE on the pairs of "
                          "train_data.teacher_scores_file, which is not set")
    if scored and train_data.get("docpairs") is None:
        raise ConfigError("config train_data.teacher_pairs: scored needs train_data.docpairs (the scored pairs are "
                          "grouped per query like the docpairs, over the same split)")
    if margin_mse and not scored and train_data.get("docpairs") is not None and train_data["teacher_scores_file"]:
        raise ConfigError(f"config train_data.teacher_scores_file: {train_data['teacher_scores_file']} scores the "
                          "pairs its teacher scored, not the docpairs that Margin-MSE would train on with "
                          "teacher_pairs: triples; set train_data.teacher_pairs: scored (docs/cluster.md)")


def check_reference(reference: str, candidates: Iterable[str]) -> None:
    """The significance tests' reference must exist: otherwise the main table silently has no tests."""
    candidates = sorted(set(candidates))
    if reference in candidates:
        return
    close = difflib.get_close_matches(reference, candidates, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    objectives = [c for c in candidates if "/" not in c]
    raise ConfigError(f"config analysis.reference_objective: {reference!r} is no objective of the experiment grid "
                      f"(run without in-batch negatives) nor a system; {hint}objectives: {', '.join(objectives)}")


def check_measures(names: Iterable[str], key: str) -> None:
    """Every measure name parses with ir_measures (as the evaluate rule will parse it)."""
    import ir_measures

    for name in names:
        try:
            ir_measures.parse_measure(name)
        except (NameError, ValueError, TypeError, SyntaxError) as error:
            family = re.split(r"[@(]", name, maxsplit=1)[0]
            close = difflib.get_close_matches(family, list(ir_measures.measures.registry), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"config {key}: {name!r} is not an ir_measures measure ({error}){hint}") from None


def check_index(factory: str) -> None:
    """``retrieval.index`` parses as a faiss index factory string (inner product)."""
    import faiss

    message = ""
    for dimension in INDEX_CHECK_DIMENSIONS:
        try:
            faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
            return
        except RuntimeError as error:
            message = message or re.sub(r"^Error in .*? at \S+:\d+: ", "", str(error).strip())
    raise ConfigError(f"config retrieval.index: {factory!r} is not a faiss index factory string ({message})")


def check_local_files(spec: Mapping, key: str) -> None:
    """The docs, queries and qrels files of a local collection exist (an ir_datasets id is checked elsewhere)."""
    if spec.get("dataset"):
        return
    for part in ("docs", "queries", "qrels"):
        path = Path(spec[part]).expanduser()
        if not path.exists():
            raise ConfigError(f"config {key}.{part}: no such file: {spec[part]} "
                              f"(relative paths are relative to the working directory {Path.cwd()})")
