"""Each training objective with negatives mined by BM25 vs by the zero-shot student's own ranking (grid column
``negatives``): does the negative source change which loss wins?"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from margin_retrieval.analysis.figures.comparison import build_for
from margin_retrieval.analysis.systems import NEGATIVES_NAMES


def build(inputs: Mapping, params: Mapping, outputs: Mapping) -> pd.DataFrame:
    return build_for("negatives", NEGATIVES_NAMES, "Test effectiveness by negative source", inputs, params,
                     outputs)
