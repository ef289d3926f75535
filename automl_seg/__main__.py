"""``python -m automl_seg``: the CLI, e.g. for ``torchrun --nproc-per-node N -m automl_seg search ...``."""

from automl_seg.cli.main import entry

entry()
