"""First-party automl-seg plugin: the MLflow observer (``pip install 'automl-seg[mlflow]'``)."""
