"""Stage 6: the Parquet benchmark (rows, leakage-safe splits, hidden test labels, card, Croissant),
the evaluator and the run report."""
