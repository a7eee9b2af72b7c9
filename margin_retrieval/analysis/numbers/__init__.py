"""Every number the tables and figures show is computed here (seed aggregation, significance, data efficiency,
speed-up, training logs); ``analysis.tables`` and ``analysis.figures`` only render them."""
