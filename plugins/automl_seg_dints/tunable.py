"""What ``automl-seg tune`` may search for the DiNTS strategy: its search settings and the supernet width.

Wired into the plugin by importing ``tunable_parameters`` in ``plugin.py``. Ranges suit the ``quick``
budget (6 search epochs); narrow or fix them in the tune config (``tune.params``) for ``full``.
"""

from __future__ import annotations

from automl_seg.hookspecs import hookimpl
from automl_seg.interfaces import TunableParameter


@hookimpl
def tunable_parameters(strategy: str, space: str) -> list[TunableParameter] | None:
    if strategy != "dints":
        return None
    return [
        TunableParameter(name="weight_lr", target="strategy", kind="float", low=1e-3, high=0.2, log=True,
                         help="SGD learning rate of the supernet weights"),
        TunableParameter(name="arch_lr", target="strategy", kind="float", low=1e-4, high=3e-2, log=True,
                         help="Adam learning rate of the architecture parameters"),
        TunableParameter(name="warmup_epochs", target="strategy", kind="int", low=0, high=4,
                         help="weight-only epochs before the architecture is searched (must stay < epochs)"),
        TunableParameter(name="memory_budget", target="strategy", kind="float", low=0.2, high=0.8,
                         help="memory budget as a fraction of the full supernet"),
        TunableParameter(name="topology_loss_weight", target="strategy", kind="float", low=1e-4, high=1e-2,
                         log=True, help="weight of the topology loss"),
        TunableParameter(name="channel_mul", target="space", kind="categorical", choices=[0.25, 0.5, 1.0],
                         help="channel multiplier of the supernet"),
    ]  # fmt: skip
