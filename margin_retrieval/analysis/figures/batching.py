"""Each training objective with random vs clustered (contextual) batches (grid column ``batching``): do the
losses that use other examples of the batch (in-batch margins, distributed, InfoNCE) gain from hard batches, and
do the per-triple ones stay unchanged, as "no batch sampling needed" implies?"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from margin_retrieval.analysis.figures.comparison import build_for

NAMES = {"random": "random batches", "clustered": "clustered batches"}


def build(inputs: Mapping, params: Mapping, outputs: Mapping) -> pd.DataFrame:
    return build_for("batching", NAMES, "Test effectiveness by batch sampling", inputs, params, outputs)
