"""The runs an archive holds, one Markdown table row each: how long each trained and how it ended (the table in
``archive/<grid>/README.md``). Validation only: the test scores under ``eval/`` are not read.

    python tools/archive_runs.py archive/scifact_tuned [--window 90]

For a run that the step cap ended, the last column says how much its best validation rose over its last ``window``
steps (the grid's ``patience_steps``): the part of its result that a patience-stopped run would have waited for, and
a measure of what a higher cap might still add.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from margin_retrieval.analysis.numbers.train_logs import read_benchmark, read_train_log
from margin_retrieval.analysis.results import TEST_MEASURE  # the validation curves' column too
from margin_retrieval.analysis.systems import normalise, sort_key, system_label
from margin_retrieval.jobs.io import read_tsv
from margin_retrieval.workflow import archive

ENDINGS = {"early_stopping": "early stopping", "max_steps": "the cap"}
HEADER = ("system", "seed", "lr", "steps", "ended by", "best step", "best validation", "train job",
          "rise in the last {window} steps")


def run_columns(run: str) -> dict:
    """The typed experiment columns of a run name (``model~minilm-l3/objective~adaptive/tau~none/.../seed~0``)."""
    columns = dict(segment.split("~", 1) for segment in run.split("/"))
    return normalise({"system": f"trained/{run}", **{key: None if value == "none" else value
                                                      for key, value in columns.items()}})


def late_rise(log: dict, window: int) -> str:
    """Best validation minus the best of the validations at least ``window`` steps before the last step, for a run
    the cap ended; "–" for a run that stopped on its own (its best is older than the window by definition)."""
    end = log["end"]
    if end["stopped_reason"] != "max_steps":
        return "–"
    validation = log["validation"]
    before = validation.loc[validation["step"] <= end["step"] - window, TEST_MEASURE]
    return f"{end['best_value'] - before.max():+.3f}"


def row(folder: Path, run: str, usual: dict[str, str], window: int) -> list[str]:
    columns = run_columns(run)
    varying = {column for column, value in usual.items() if columns[column] != value}
    log = read_train_log(folder / archive.train_log(run))
    end = log["end"]
    seconds = read_benchmark(folder / archive.train_benchmark(run))["wall_seconds"]
    label = system_label(columns, varying=varying)
    return [label, str(columns["seed"]), f"{columns['lr']:g}", str(end["step"]),
            ENDINGS.get(end["stopped_reason"], end["stopped_reason"]), str(end["best_step"]),
            f"{end['best_value']:.3f}", f"{seconds / 60:.0f} min", late_rise(log, window)]


def table(folder: Path, window: int = 90) -> str:
    runs = [record["run"] for record in read_tsv(folder / archive.PROVENANCE)]
    runs.sort(key=lambda run: sort_key(run_columns(run)))
    # A run's negatives and batching are named only where they depart from the archive's usual ones, so the headline
    # rows keep their short names.
    usual = {column: Counter(run_columns(run)[column] for run in runs).most_common(1)[0][0]
             for column in ("negatives", "batching")}
    header = [column.format(window=window) for column in HEADER]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row(folder, run, usual, window)) + " |" for run in runs]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path, help="an archive folder (its runs.tsv lists the runs)")
    parser.add_argument("--window", type=int, default=90, help="steps before the cap (the grid's patience_steps)")
    arguments = parser.parse_args()
    print(table(arguments.archive, arguments.window))


if __name__ == "__main__":
    main()
