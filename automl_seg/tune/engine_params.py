"""The engine's own tunable parameters: training (``TrainSettings``) and data (``DataSettings``) keys.

Strategies and search spaces declare theirs through the ``tunable_parameters`` hook; training and
data settings belong to the engine, so their declaration sits with the engine's tuning support and
applies to every strategy. A plugin that declares the same name replaces the engine's range (it
knows its constraints, e.g. patch sides divisible by 2^(depth+1)); the user narrows or fixes any of
them in the config file's ``tune.params`` section.
"""

from __future__ import annotations

from automl_seg.interfaces import TunableParameter

ENGINE = "engine"


def engine_parameters() -> list[tuple[str, TunableParameter]]:
    """``(owner, parameter)`` pairs for the training and data settings worth tuning on any strategy."""
    params = [
        TunableParameter(name="lr", target="train", kind="float", low=1e-4, high=3e-2, log=True,
                         help="learning rate of the retraining optimizer"),
        TunableParameter(name="weight_decay", target="train", kind="float", low=1e-6, high=1e-3, log=True,
                         help="weight decay of the retraining optimizer"),
        TunableParameter(name="batch_size", target="train", kind="categorical", choices=[1, 2, 4],
                         help="patches per optimizer step"),
        TunableParameter(name="patch_size", target="data", kind="categorical",
                         choices=[[32, 32, 32], [48, 48, 48], [64, 64, 64], [96, 96, 96]],
                         help="training patch (voxels); narrow to sizes that suit the dataset"),
    ]  # fmt: skip
    return [(ENGINE, p) for p in params]
