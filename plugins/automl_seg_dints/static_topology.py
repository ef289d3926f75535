"""MONAI's ``TopologyInstance`` with its active paths held as Python lists: same function, same state dict.

MONAI's forward decides which cells run by testing elements of the ``arch_code_a`` tensor. To
``torch.export`` those tests read a tensor's data, a data-dependent branch it refuses; here the
decision is made once, at construction, from the same architecture code, so the forward's control
flow is plain Python that every tracer and exporter follows."""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.nets import TopologyInstance


class StaticTopologyInstance(TopologyInstance):
    """``TopologyInstance`` whose forward loops over the active ``(block, path)`` pairs fixed at construction."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.active_paths: list[list[int]] = [
            [path for path, on in enumerate(row.tolist()) if on] for row in self.arch_code_a
        ]

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        inputs = x
        for blk_idx, paths in enumerate(self.active_paths):
            outputs = [torch.tensor(0.0, dtype=x[0].dtype, device=x[0].device)] * self.num_depths
            for res_idx in paths:
                cell = self.cell_tree[str((blk_idx, res_idx))]
                out = cell(x=inputs[self.arch_code2in[res_idx]], weight=None)
                outputs[self.arch_code2out[res_idx]] = outputs[self.arch_code2out[res_idx]] + out
            inputs = outputs
        return inputs
