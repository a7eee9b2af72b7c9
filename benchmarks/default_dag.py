"""The default DAG from fresh clones: the commit where issue 13 started against this one, on the same config.

Each commit is cloned beside this repository (so the config's `../shared` offline mirror resolves as it does here),
its `config.yaml` replaced by `--config`, and run with the README's first command: `bash tools/setup_venv.sh`
(`scripts/setup_venv.sh` in older commits), then `.venv/bin/snakemake --cores all`, one clone after the other, wall
clock of each. Then where the job time went (the rules' Snakemake benchmark files) and the test nDCG@10 of every
system in both runs, for the "figures unchanged within noise" check. Run it with nothing else on the machine.

    .venv/bin/python benchmarks/default_dag.py --out benchmarks/results/default_dag.txt
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from common import REPO, Report

ISSUE_START = "f625d06"  # the last commit before any work on issue 13 (its speed figures were measured there)
STAGES = ("setup", "snakemake")
# The set-up script, newest path first: older commits, the issue start among them, kept it in scripts/.
SETUP_SCRIPTS = ("tools/setup_venv.sh", "scripts/setup_venv.sh")
NEWER_COLUMNS = re.compile(r"/(negatives|batching|seed)~[^/]+")  # run-name columns the issue-start code lacks


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def fresh_clone(commit: str, folder: Path, config: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    git("clone", "-q", str(REPO), str(folder))
    git("checkout", "-q", commit, cwd=folder)
    shutil.copyfile(config, folder / "config.yaml")


def stage_commands(folder: Path) -> dict[str, list[str]]:
    """The README's set-up and run commands as that clone spells them."""
    setup = next(script for script in SETUP_SCRIPTS if (folder / script).is_file())
    return {"setup": ["bash", setup], "snakemake": [".venv/bin/snakemake", "--cores", "all"]}


def timed_stages(folder: Path) -> dict[str, float]:
    """Seconds of the README's set-up and of the workflow run; a failed stage stops the benchmark, naming its log."""
    seconds, commands = {}, stage_commands(folder)
    for stage in STAGES:
        log = folder.parent / f"{folder.name}.{stage}.log"
        start = time.perf_counter()
        with log.open("w") as out:
            code = subprocess.run(commands[stage], cwd=folder, stdout=out, stderr=subprocess.STDOUT).returncode
        seconds[stage] = time.perf_counter() - start
        if code:
            raise SystemExit(f"{folder.name}: `{' '.join(commands[stage])}` exited with {code}; see {log}")
    return seconds


def rule_seconds(folder: Path) -> dict[str, tuple[int, float, float]]:
    """Per rule: jobs, wall seconds and CPU seconds summed over its Snakemake benchmark files."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    root = folder / "results" / "benchmarks"
    for path in root.rglob("*.tsv"):
        rows = list(csv.DictReader(path.read_text().splitlines(), delimiter="\t"))
        if not rows or "s" not in rows[0]:
            continue  # a summary table, not a job's benchmark file
        rule = path.relative_to(root).parts[0].removesuffix(".tsv")
        total = totals[rule]
        total[0] += 1
        total[1] += float(rows[0]["s"])
        total[2] += float(rows[0]["cpu_time"] or 0)
    return {rule: tuple(total) for rule, total in totals.items()}


def ndcg_at_10(folder: Path) -> dict[str, float]:
    with (folder / "figures" / "results.tsv").open() as table:
        return {NEWER_COLUMNS.sub("", row["system"]): float(row["value"])
                for row in csv.DictReader(table, delimiter="\t") if row["measure"] == "nDCG@10"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=ISSUE_START, help="the older commit")
    parser.add_argument("--new", default="HEAD", help="the newer commit (of this repository)")
    parser.add_argument("--config", type=Path, default=REPO / "benchmarks" / "default_dag.yaml",
                        help="the config.yaml both commits run (both schemas must accept it)")
    parser.add_argument("--out", type=Path, help="also write the report here (default: print only)")
    args = parser.parse_args()
    commits = {"base": git("rev-parse", "--short", args.base), "new": git("rev-parse", "--short", args.new)}
    report = Report(__doc__.splitlines()[0], args, "one fresh clone per commit, one after the other")
    report.add(f"config: {args.config.relative_to(REPO)}; clones in {REPO.parent}")

    seconds, rules, scores = {}, {}, {}
    for label, commit in commits.items():
        folder = REPO.parent / f"default_dag_{label}"
        report.add(f"{label} = {commit}: load average at its start {os.getloadavg()[0]:.2f} (1 min)")
        fresh_clone(commit, folder, args.config)
        seconds[label] = timed_stages(folder)
        rules[label], scores[label] = rule_seconds(folder), ndcg_at_10(folder)

    report.add()
    report.table(["stage", *(f"{label} {commit} s" for label, commit in commits.items()), "base / new"],
                 [[stage, seconds["base"][stage], seconds["new"][stage], seconds["base"][stage] / seconds["new"][stage]]
                  for stage in STAGES]
                 + [["total", sum(seconds["base"].values()), sum(seconds["new"].values()),
                     sum(seconds["base"].values()) / sum(seconds["new"].values())]])
    report.add()
    report.add("Job time by rule (Snakemake benchmark files; the new code runs two one-thread jobs at a time):")
    busiest = sorted(set(rules["base"]) | set(rules["new"]), key=lambda rule: -rules["base"].get(rule, (0, 0, 0))[1])
    report.table(["rule", "base jobs", "base job s", "base CPU s", "new jobs", "new job s", "new CPU s"],
                 [[rule, *rules["base"].get(rule, ("-",) * 3), *rules["new"].get(rule, ("-",) * 3)]
                  for rule in busiest])
    report.add()
    report.add("Test nDCG@10 per system (run names without the columns the base code lacks):")
    report.table(["system", "base", "new", "new - base"],
                 [[system, f"{scores['base'][system]:.4f}", f"{scores['new'][system]:.4f}",
                   f"{scores['new'][system] - scores['base'][system]:+.4f}"]
                  for system in sorted(scores["base"].keys() & scores["new"].keys())])
    report.close()


if __name__ == "__main__":
    main()
