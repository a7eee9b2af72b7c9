"""Stopping rules replayed on the full validation curves of a results folder (runs trained with early stopping off):
per rule and run where it would stop and what it would keep, and per rule its regret and cost, as two TSV tables.

    python tools/stopping_rules.py RESULTS_DIR OUT_PREFIX --noise 0.012   # OUT_PREFIX_replays.tsv, OUT_PREFIX_rules.tsv

``--noise``: the paired σ of a validation difference between two checkpoints (``tools/validation_noise.py``); a rule
that keeps the untrained model where the curve rises above step 0 by more than this is counted as keeping it wrongly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from margin_retrieval.analysis.numbers.stopping_rules import candidate_rules, replay_table, rule_summary
from margin_retrieval.analysis.numbers.validation_noise import read_validations
from margin_retrieval.analysis.results import TEST_MEASURE, write_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results folder (its train/**/train_log.jsonl are read)")
    parser.add_argument("out", help="prefix of the two TSV files")
    parser.add_argument("--noise", type=float, required=True, help="paired σ of a validation difference")
    parser.add_argument("--min-delta", type=float, nargs="+", default=[0.0, 0.002, 0.005, 0.01])
    parser.add_argument("--patience-steps", type=int, nargs="+", default=[18, 36, 54])
    parser.add_argument("--min-steps", type=int, nargs="+", default=[0, 27, 54])
    args = parser.parse_args()
    curves = {str(path.parent.relative_to(args.results / "train")):
              [(event["step"], event[TEST_MEASURE]) for event in read_validations(path)]
              for path in sorted((args.results / "train").rglob("train_log.jsonl"))}
    if not curves:
        raise SystemExit(f"no train_log.jsonl under {args.results / 'train'}")
    rows = replay_table(curves, candidate_rules(args.min_delta, args.patience_steps, args.min_steps), args.noise)
    write_frame(pd.DataFrame(rows), f"{args.out}_replays.tsv")
    write_frame(pd.DataFrame(rule_summary(rows)), f"{args.out}_rules.tsv")


if __name__ == "__main__":
    main()
