"""A wrong config stops ``snakemake -n`` before any job, in a few lines that name the key or the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from margin_retrieval import checks
from margin_retrieval.checks import ConfigError
from margin_retrieval.models.source_kind import model_source_kind

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
    assert not (tmp_path / "results").exists()


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
    config["collections"]["scifact-test"]["measures"] = ["nDCG@10"]
    checks.check_values(config, {"margin_mse", "zeroshot/minilm-l6"}, ["minilm-l3"], margin_mse=True)


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
    job, here a malformed qrels line found by the download job, reaches the terminal, not only its log file."""
    config = default_config()
    config["ir_datasets_home"] = str(tmp_path / "ir_datasets")
    config["collections"]["local"] = local_collection(tmp_path)
    (tmp_path / "qrels.tsv").write_text("q1 0 d1 1\nq1 0 d1\n")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([*SNAKEMAKE, "results/data/local/manifest.json", "--cores", "1", "--directory",
                             str(tmp_path), "--configfile", str(path)], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "profiles/default" in output
    assert f"{(tmp_path / 'qrels.tsv').resolve()}:2: expected 'query_id 0 doc_id relevance'" in output, output
