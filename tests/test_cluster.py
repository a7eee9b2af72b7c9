"""Cluster scale: conda env pins, the paper configuration's DAG, and the SLURM profile's sbatch calls (with fake SLURM
commands, offline, in well under a minute)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from margin_retrieval.workflow.experiments import COLUMNS, expand_experiments
from tests.configs import grid_defaults
from tests.test_checks import MAX_MESSAGE_LINES

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
PAPER = REPO / "config" / "paper.yaml"
SLURM_PROFILE = REPO / "profiles" / "slurm"
GPU_RULES = ("train", "encode_docs", "encode_queries", "score_teacher")
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)$")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins() -> dict[str, str]:
    pins = {}
    for path in (REPO / "requirements/workflow.txt", REPO / "requirements/models.txt"):
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                match = PIN.match(line)
                assert match, f"{path.name}: {line!r} is not pinned with =="
                pins[_normalize(match[1])] = match[2]
    return pins


def env_packages(path: Path) -> list[str]:
    """The pip requirement lines of a conda env file (options such as --extra-index-url left out)."""
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and env.get("dependencies"), f"{path.name}: no dependencies"
    pip = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += [line for line in dep.get("pip", []) if not line.startswith("-")]
    return pip


ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_pins_agree_with_requirements(path):
    env = yaml.safe_load(path.read_text())
    assert "conda-forge" in env["channels"]
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+=[0-9][^\s]*", dep), f"{path.name}: conda package {dep!r} not pinned"
    packages = env_packages(path)
    assert packages, f"{path.name}: no pip packages"
    requirements = requirement_pins()
    for line in packages:
        match = PIN.match(line)
        assert match, f"{path.name}: {line!r} is not pinned with =="
        name, version = _normalize(match[1]), match[2]
        if name in requirements:
            assert version == requirements[name], f"{path.name}: {name}=={version} but requirements pin {requirements[name]}"


def test_gpu_env_installs_cuda_torch_and_8bit_adam():
    env = yaml.safe_load((REPO / "envs" / "torch.yaml").read_text())
    pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    assert any(line.startswith("--extra-index-url https://download.pytorch.org/whl/cu") for line in pip)
    from margin_retrieval.training.optim import BITSANDBYTES

    assert BITSANDBYTES in pip  # the pin that the missing-package error tells the user to install


def test_every_rule_with_a_conda_directive_points_to_an_existing_env():
    for rules in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', rules.read_text()):
            assert (rules.parent / env).resolve().is_file(), f"{rules.name}: missing {env}"


# --- the paper configuration's DAG -----------------------------------------------------------------------------------

def job_stats(output: str) -> dict[str, int]:
    """The first "Job stats" table of a dry run: rule -> job count."""
    lines = output[output.index("Job stats:"):].splitlines()[3:]
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def expected_jobs(config: dict) -> dict[str, int]:
    students = [config["student"]] if isinstance(config["student"], str) else config["student"]
    runs = expand_experiments(config["experiments"], students, grid_defaults(config)).table
    margin_mse = bool((runs["objective"] == "margin_mse").any())
    negative_sets = {(run.negatives, run.model if run.negatives == "student" else "") for run in runs.itertuples()}
    systems = len(config.get("zeroshot", [])) + len(runs)
    collections = len(config["collections"])
    corpora = 1  # TREC DL 2019, 2020 and MS MARCO dev share the 8.8M passages: one corpus encoding per system
    validation = int(bool(config["train_data"]["validation"]["dataset"]))
    models = set(students) | set(config.get("zeroshot", [])) | ({config["teacher"]} if margin_mse and config["teacher"] else set())
    return {
        "download": collections + 1 + validation,
        "prepare_model": len(models),
        "training_split": int("docpairs" not in config["train_data"]),
        "training_data": len(negative_sets),
        "score_teacher": len({(run.negatives, run.model if run.negatives == "student" else "")
                              for run in runs[runs.objective == "margin_mse"].itertuples()}),
        "train": len(runs),
        "encode_docs": systems * corpora,  # every shard of a corpus in one job
        "encode_queries": systems * collections,
        "search": systems * collections,  # every shard of the corpus in one job
        "write_run": systems * collections,
        "evaluate": systems * collections,
    }


def test_paper_config_is_complete_and_valid():
    from snakemake.utils import validate

    config = yaml.safe_load(PAPER.read_text())
    validate(config, str(REPO / "schemas" / "config.schema.yaml"), set_default=False)
    students = config["student"]
    assert students == ["distilbert", "mpnet", "roberta"]
    assert {config["models"][m]["pooling"] for m in students} == {"cls", "pooler"}
    assert config["training"]["device"] == "cuda"


def place_published_scores(root: Path) -> None:
    """An empty stand-in for the published teacher scores: the config check requires the file before any job."""
    path = root / yaml.safe_load(PAPER.read_text())["train_data"]["teacher_scores_file"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")


def test_paper_config_dry_run_job_counts(tmp_path):
    """The job counts of the paper's DAG, with 2 shards instead of 32 (the count of no rule depends on them: one job
    encodes every shard of a corpus, one searches them all)."""
    config = yaml.safe_load(PAPER.read_text())
    place_published_scores(tmp_path)
    assert config["retrieval"]["shards"] == 32
    override = tmp_path / "shards.yaml"
    override.write_text(yaml.safe_dump({"retrieval": {"shards": 2}}))
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")  # as in the repository: must not leak in
    result = subprocess.run(
        [*SNAKEMAKE, "--dry-run", "--quiet", "rules", "--directory", str(tmp_path), "--configfile", str(PAPER),
         str(override), "--replace-workflow-config"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = job_stats(result.stdout + result.stderr)
    config["retrieval"]["shards"] = 2
    for rule, expected in expected_jobs(config).items():
        assert counts.get(rule, 0) == expected, f"{rule}: {counts.get(rule)} jobs, expected {expected}"
    # Hand-computed, so that a silent change of the grid shows: exp1 10 tau x 2 in-batch x 3 models = 60,
    # exp2 2 x 3 = 6, exp3 3 (the sweeps, at their own lr), exp4 6 x 3 = 18, data efficiency 3 x 3 fractions below 1.
    assert counts["train"] == 96
    assert counts["encode_docs"] == 96  # one shared MS MARCO corpus, one job for all its shards
    assert counts["download"] == 5  # train, validation, 3 collections: the SciFact default was replaced, not merged


def test_paper_config_without_scored_pairs_stops_the_dry_run_in_a_few_lines(tmp_path):
    """Published scores of other pairs than the Margin-MSE runs' triples: known from the config alone, so the
    workflow stops before the first job, not after hours of preparing the training data."""
    config = yaml.safe_load(PAPER.read_text())
    config["train_data"]["teacher_pairs"] = "triples"
    configfile = tmp_path / "unscored.yaml"
    configfile.write_text(yaml.safe_dump(config))
    place_published_scores(tmp_path)
    result = subprocess.run([*SNAKEMAKE, "--dry-run", "--directory", str(tmp_path), "--configfile", str(configfile)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "set train_data.teacher_pairs: scored" in output and "bert_cat_ensemble" in output, output
    assert len(output.strip().splitlines()) <= MAX_MESSAGE_LINES, output  # as every refused config


# --- SLURM submission with fake SLURM commands -----------------------------------------------------------------------

FAKE_SLURM = """#!/bin/sh
# Records every call; answers like a small cluster whose jobs never finish.
echo "$(basename "$0") $*" >> "$FAKE_SLURM_LOG"
case "$(basename "$0")" in
  sbatch) n=$(($(grep -c '^sbatch ' "$FAKE_SLURM_LOG"))); echo "$((1000 + n))" ;;
  sacctmgr|sshare) echo "testacct" ;;
  sinfo) printf 'PARTITION\\ntestpart*\\n' ;;
  scontrol) echo "MaxArraySize = 1001"; echo "MinJobAge = 300" ;;
esac
exit 0
"""


def _fake_slurm(bin_dir: Path) -> None:
    bin_dir.mkdir()
    for name in ("sbatch", "sacct", "squeue", "scontrol", "sinfo", "sacctmgr", "sshare", "scancel"):
        (bin_dir / name).write_text(FAKE_SLURM)
        (bin_dir / name).chmod(0o755)


def _touch_train_inputs(root: Path, model: str) -> None:
    (root / "results/data/train").mkdir(parents=True)
    (root / "results/data/train/manifest.json").write_text("{}")
    time.sleep(0.01)
    for name in ("docpairs/triples.tsv", "splits.json", "validation_candidates.tsv", "docpairs/stats.json",
                 "scored/triples.tsv", "scored/stats.json"):
        path = root / "results/train_data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    (root / "results/models" / model).mkdir(parents=True)


def sbatch_calls(root: Path, configfile: Path, targets: list[str]) -> list[str]:
    """The sbatch command lines with which the SLURM profile submits ``targets`` (fake SLURM commands that never
    finish a job: Snakemake is stopped once every target was submitted)."""
    _fake_slurm(root / "bin")
    log = root / "slurm_calls.txt"
    log.write_text("")
    env = {**os.environ, "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}", "FAKE_SLURM_LOG": str(log),
           "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("SLURM_JOB_ID", None)
    # targets first: --default-resources (nargs *) would swallow them
    command = [*SNAKEMAKE, *targets, "--directory", str(root), "--workflow-profile", str(SLURM_PROFILE),
               "--configfile", str(configfile),
               "--default-resources", "slurm_account=testacct", "slurm_partition=testpart"]
    process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 45
    submitted: list[str] = []
    try:
        while time.monotonic() < deadline and process.poll() is None:
            submitted = [line for line in log.read_text().splitlines() if line.startswith("sbatch ")]
            if len(submitted) >= len(targets):
                break
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        output = process.stdout.read()
    assert len(submitted) == len(targets), f"sbatch calls: {submitted}\n{output[-4000:]}"
    return submitted


def test_slurm_profile_requests_gpus_only_for_gpu_rules(tmp_path):
    config = yaml.safe_load(PAPER.read_text())
    runs = expand_experiments(config["experiments"], config["student"], grid_defaults(config)).table
    row = runs[(runs.model == "distilbert") & (runs.objective == "adaptive") & (runs.fraction == "1")
               & (runs.in_batch == "false")].iloc[0]
    run = "/".join(f"{column}~{row[column]}" for column in COLUMNS)
    place_published_scores(tmp_path)  # older than the training data made from it
    _touch_train_inputs(tmp_path, "distilbert")
    # a GPU job, a CPU job, and teacher scoring that reads the published scores file
    targets = [f"results/train/{run}/train_log.jsonl", "results/models/mpnet",
               "results/train_data/scored/teacher_scores.tsv"]
    submitted = sbatch_calls(tmp_path, PAPER, targets)
    train = next(call for call in submitted if "rule_train" in call)
    prepare = next(call for call in submitted if "rule_prepare_model" in call)
    teacher = next(call for call in submitted if "rule_score_teacher" in call)
    assert "--gpus=1" in train
    assert f"--configfiles {PAPER}" in train  # the job step re-reads the same configuration
    assert "--cpus-per-task=8" in train and "--mem 64000" in train and "-t 2880" in train
    assert "-A testacct" in train and "-p testpart" in train
    assert "--gpus" not in prepare and "--gres" not in prepare
    assert "--mem 8000" in prepare and "-t 60" in prepare and "-A testacct" in prepare
    assert "--gpus" not in teacher and "--cpus-per-task=8" in teacher  # joining published scores needs no GPU


def test_slurm_profile_signals_training_before_its_time_limit_and_requeues(tmp_path):
    """SIGTERM two minutes before the limit reaches the training process (which then checkpoints and exits); SLURM
    requeues jobs after a node failure or preemption."""
    config = yaml.safe_load(PAPER.read_text())
    runs = expand_experiments(config["experiments"], config["student"], grid_defaults(config)).table
    row = runs[(runs.model == "distilbert") & (runs.objective == "static")].iloc[0]
    run = "/".join(f"{column}~{row[column]}" for column in COLUMNS)
    place_published_scores(tmp_path)  # older than the training data made from it
    _touch_train_inputs(tmp_path, "distilbert")
    submitted = sbatch_calls(tmp_path, PAPER, [f"results/train/{run}/train_log.jsonl", "results/models/mpnet"])
    train = next(call for call in submitted if "rule_train" in call)
    prepare = next(call for call in submitted if "rule_prepare_model" in call)
    assert " --signal=TERM@120" in train and "--signal" not in prepare
    assert all(" --requeue" in call for call in submitted)


def test_slurm_profile_requests_a_gpu_for_teacher_scoring_with_a_model(tmp_path):
    config = yaml.safe_load(PAPER.read_text())
    config["teacher"] = "distilbert"
    config["train_data"].update(teacher_scores_file=None, teacher_pairs="triples")
    configfile = tmp_path / "teacher_model.yaml"
    configfile.write_text(yaml.safe_dump(config))
    _touch_train_inputs(tmp_path, "distilbert")
    (teacher,) = sbatch_calls(tmp_path, configfile, ["results/train_data/docpairs/teacher_scores.tsv"])
    assert "--gpus=1" in teacher


def test_slurm_profile_names_existing_rules():
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert "default-resources" not in profile  # a command-line --default-resources would replace it wholesale
    rules = set()
    for path in (REPO / "rules").glob("*.smk"):
        rules |= set(re.findall(r"^\s*rule (\w+):", path.read_text(), re.M))  # also rules under an if
    for key in ("set-resources", "set-threads"):
        unknown = set(profile[key]) - rules
        assert not unknown, f"{key} names rules that do not exist: {unknown}"
    for rule in GPU_RULES:
        resources = profile["set-resources"][rule]
        assert resources["gpu"] == 1 or rule == "score_teacher"  # whose GPU depends on its input: tested above
        assert resources["cpus_per_task"] == profile["set-threads"][rule]
