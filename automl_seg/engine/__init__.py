"""Training, evaluation, prediction and the search pipeline (plain functions, typed settings)."""
