"""The figures: one module per figure (plotting only; the numbers come from ``analysis.numbers``), each with a
``build(inputs, params, outputs)`` that loads its inputs and writes a PNG and a PDF (and its data files).

``build_figure`` is the single entry point the Snakemake script calls; ``FIGURES`` is the registry of names.
Every figure copes with a configuration that lacks some of its pieces (no static runs, no teacher, one value of a
column): it says so on the figure instead of failing. Output is deterministic (fixed style, Agg, no timestamps).
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

from margin_retrieval.analysis.figures import (
    batching, data_efficiency, negatives, per_query, speedup, targets, tau, training_curves,
)

log = logging.getLogger(__name__)

FIGURES: dict[str, Callable[[Mapping, Mapping, Mapping], object]] = {
    "tau": tau.build,
    "data_efficiency": data_efficiency.build,
    "training_curves": training_curves.build,
    "speedup": speedup.build,
    "targets": targets.build,
    "per_query": per_query.build,
    "negatives": negatives.build,
    "batching": batching.build,
}


def build_figure(name: str, inputs: Mapping, params: Mapping, outputs: Mapping):
    """Draw figure ``name`` from the Snakemake job's input/params/output (as plain mappings).

    inputs: ``manifest`` (results/systems.json; every figure that reads logs or per-query files), ``results``
    (tau, data_efficiency, negatives, batching), ``teacher_benchmark`` (speedup, optional). params: ``analysis``
    (the config section), optional ``collection``, ``student``, ``teacher``. outputs: ``png``, ``pdf``; optional
    ``json`` (data_efficiency, speedup) and ``tsv`` (speedup, negatives, batching).
    """
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known: {sorted(FIGURES)}")
    log.info("figure %s -> %s", name, ", ".join(str(path) for path in outputs.values()))
    return FIGURES[name](inputs, params, outputs)
