"""The ``automl-seg`` command line: parses, prints, and calls library functions, nothing else."""
