"""Evaluation: speaker folds, scoring outputs and the RESULTS.md report (the metrics: ser.metrics)."""
