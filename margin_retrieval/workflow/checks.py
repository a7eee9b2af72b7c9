"""Config checks that run when the workflow reads its config, so that a mistake stops ``snakemake`` (even ``-n``)
before the first job, in a few lines that name the key or the file (the Snakefile prints a ConfigError without a
traceback).

- ``check_yaml_syntax``: the embedded config.yaml parses, else ``<file>:<line>:<column>: <problem>`` (a
  ``--configfile`` is parsed by Snakemake's command line before any workflow code runs: it cannot be checked here);
- ``check_schema``: the JSON schema (schemas/config.schema.yaml), reported as one line per problem: the key's path,
  and for an unknown key the closest valid one ("did you mean 'training'?") instead of a dump of the schema;
- ``check_values``: what the schema cannot express: the significance tests' reference, measure names (ir_measures),
  the faiss index factory string, the local files and directories the jobs will read (and the first lines of local
  collection files), validation queries that would leave no training query, input lengths beyond a model's
  position embeddings, and whether published teacher scores can cover the
  Margin-MSE runs' triples.

faiss and ir_measures are imported inside the checks that need them: importing this module stays cheap.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import yaml

from margin_retrieval.data.local_formats import check_local_files as check_file_lines
from margin_retrieval.data.local_formats import judged_query_count
from margin_retrieval.jobs.errors import ConfigError
from margin_retrieval.models.positions import position_limit
from margin_retrieval.models.source_kind import model_source_kind

# Embedding sizes tried when parsing the index string: a product quantizer (PQ<M>) needs M to divide the dimension,
# which is not known before a model is loaded, so the string counts as valid if one common dimension accepts it.
INDEX_CHECK_DIMENSIONS = (768, 1024, 384, 960)
MAX_REPORTED = 5  # schema problems shown at once; the rest are counted
HEAD_LINES = 1000  # first lines of each local collection file checked before any job (the download job checks all)


# -- the file itself ---------------------------------------------------------------------------------------------------


def check_yaml_syntax(path: str | Path) -> None:
    """Raise ConfigError ``<file>:<line>:<column>: <problem>`` for a file that is not YAML; Snakemake's own message
    names neither the file nor the line. Only the syntax is checked (the file is composed, not constructed); a
    missing file is left to Snakemake, whose message names it."""
    try:
        with open(path, encoding="utf-8") as handle:
            yaml.compose(handle, Loader=yaml.SafeLoader)
    except FileNotFoundError:
        return
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text ({error})") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        context = f" ({error.context} at line {error.context_mark.line + 1})" if error.context_mark else ""
        raise ConfigError(f"{path}:{mark.line + 1}:{mark.column + 1}: {error.problem}{context}") from None


# -- the schema ------------------------------------------------------------------------------------------------------


def drop_removed_collections(config: dict) -> None:
    """Remove the collections set to null: a configfile merged onto another (Snakemake merges them key by key, so it
    cannot otherwise drop one) removes a collection of the one before with ``collections: {name: null}``."""
    collections = config.get("collections")
    if isinstance(collections, dict):
        config["collections"] = {name: spec for name, spec in collections.items() if spec is not None}


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
    figure_collection = config["analysis"].get("collection")
    if figure_collection is not None and figure_collection not in config["collections"]:
        raise ConfigError(f"config analysis.collection: {figure_collection!r} is none of the collections "
                          f"({', '.join(config['collections'])})")
    for name, collection in config["collections"].items():
        check_measures(collection["measures"], f"collections.{name}.measures")
        check_local_files(collection, f"collections.{name}", name)
        relevance_map(collection.get("relevance_map"), f"collections.{name}.relevance_map")
    check_index(config["retrieval"]["index"])
    check_local_files(config["train_data"], "train_data", "train_data")
    check_validation_queries(config["train_data"])
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
    check_input_lengths(config, used_models)


def relevance_map(mapping: Mapping | None, key: str) -> dict[int, int] | None:
    """The ``relevance_map`` of a collection with integer keys (YAML gives ints, JSON strings); None when unset."""
    if mapping is None:
        return None
    try:
        return {int(label): int(grade) for label, grade in mapping.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"config {key}: keys must be integer relevance labels, e.g. {{-1: 0, 1: 4}}; got "
                          f"{dict(mapping)}") from None


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


def check_local_files(spec: Mapping, key: str, name: str) -> None:
    """The docs, queries and qrels files of local collection ``name`` exist and their first lines have the expected
    shape (MalformedFileError: file, line, expected, got); an ir_datasets id is checked elsewhere."""
    if spec.get("dataset"):
        return
    paths = {}
    for part in ("docs", "queries", "qrels"):
        path = Path(spec[part]).expanduser()
        if not path.exists():
            raise ConfigError(f"config {key}.{part}: no such file: {spec[part]} "
                              f"(relative paths are relative to the working directory {Path.cwd()})")
        if not path.is_file() and not (part == "docs" and spec["docs_format"] == "trec"):  # trec: a directory too
            raise ConfigError(f"config {key}.{part}: {spec[part]} is not a file")
        paths[part] = path
    check_file_lines(paths, spec["docs_format"], name, max_lines=HEAD_LINES)


def check_validation_queries(train_data: Mapping) -> None:
    """``train_data.validation_queries`` leaves queries to train on, where their number is known before any job: a
    local qrels file's queries with a judged positive, or the query count ir_datasets publishes for a dataset id
    (both upper bounds; the training_split job checks the exact number, which needs the downloaded data)."""
    if train_data["validation"]["dataset"]:
        return  # validation on a dataset of its own: no training query is held out
    held_out = train_data["validation_queries"]
    if train_data.get("dataset"):
        count, source = published_query_count(train_data["dataset"]), f"{train_data['dataset']!r} has"
        max_queries = (train_data.get("docpairs") or {}).get("max_queries")
        if count is not None and max_queries is not None and max_queries < count:
            count, source = max_queries, "train_data.docpairs.max_queries keeps"
    else:
        count, source = judged_query_count(Path(train_data["qrels"]).expanduser()), f"{train_data['qrels']} judges"
    if count is not None and held_out >= count:
        raise ConfigError(f"config train_data.validation_queries: {held_out} would hold out every training query "
                          f"({source} {count} queries); use fewer than {count}")


def published_query_count(dataset_id: str) -> int | None:
    """The query count in ir_datasets' metadata (shipped with the package: nothing is downloaded), if it has one."""
    import ir_datasets

    try:
        dataset = ir_datasets.load(dataset_id)
    except KeyError:
        return None  # not an ir_datasets id: rules/common.smk reports it
    return dataset.queries_count() if dataset.has_queries() else None


def check_input_lengths(config: Mapping, used_models: Iterable[str]) -> None:
    """``training.max_query_length`` and ``max_doc_length``, which training, teacher scoring and encoding truncate to,
    and ``retrieval.max_query_length``, fit the position embeddings of every model the DAG prepares: a longer input
    fails inside a job, and only once a text that long comes along. A model whose limit is unknown before it is
    prepared (a hub id is not downloaded here, a package may be installed only in the jobs' environment) is not
    checked."""
    lengths = {f"training.{key}": config["training"][key] for key in ("max_query_length", "max_doc_length")}
    if config["retrieval"]["max_query_length"] is not None:
        lengths["retrieval.max_query_length"] = config["retrieval"]["max_query_length"]
    models = config["models"]
    for model in sorted(used_models):
        limit = position_limit(models[model]["source"])
        for key, length in lengths.items():
            if limit is not None and length > limit:
                raise ConfigError(f"config {key}: {length} is more than model {model!r} takes "
                                  f"({limit} positions, {models[model]['source']}); use at most {limit}")
