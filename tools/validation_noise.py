"""How noisy validation is in a results folder: per run (within-run σ, best vs start and best vs final with their
paired-bootstrap σ) and between runs validated on the same queries (best vs best), as two TSV tables.

    python tools/validation_noise.py RESULTS_DIR OUT_PREFIX    # writes OUT_PREFIX_runs.tsv, OUT_PREFIX_pairs.tsv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from margin_retrieval.analysis.numbers.validation_noise import between_runs, noise_table
from margin_retrieval.analysis.results import write_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results folder (its train/**/train_log.jsonl are read)")
    parser.add_argument("out", help="prefix of the two TSV files")
    args = parser.parse_args()
    logs = {str(path.parent.relative_to(args.results / "train")): path
            for path in sorted((args.results / "train").rglob("train_log.jsonl"))}
    if not logs:
        raise SystemExit(f"no train_log.jsonl under {args.results / 'train'}")
    write_frame(pd.DataFrame(noise_table(logs)), f"{args.out}_runs.tsv")
    write_frame(pd.DataFrame(between_runs(logs), columns=["run_a", "run_b", "queries", "difference", "paired_sd"]),
                f"{args.out}_pairs.tsv")


if __name__ == "__main__":
    main()
