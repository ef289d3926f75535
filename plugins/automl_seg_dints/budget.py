"""The memory budget: a fraction of the full supernet (the paper's sigma) or absolute megabytes."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from automl_seg.errors import ConfigError

if TYPE_CHECKING:
    from automl_seg_dints.calibrate import MemoryCalibration

log = logging.getLogger(__name__)

_ABSOLUTE = re.compile(r"^\s*(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>MB|MIB|GB|GIB)\s*$", re.IGNORECASE)
_UNIT_MB = {"MB": 1.0, "MIB": 1.0, "GB": 1024.0, "GIB": 1024.0}
HELP = "use a fraction in (0, 1] of the full supernet (e.g. 0.5) or megabytes (e.g. 900MB)"


@dataclass(frozen=True)
class MemoryBudget:
    """Exactly one of ``fraction`` / ``megabytes`` is set."""

    fraction: float | None = None
    megabytes: float | None = None

    def resolve(
        self, reference_full_mb: float, minimum_fraction: float, calibration: MemoryCalibration | None = None
    ) -> float:
        """The budget as a fraction of the full supernet; an error when no architecture fits it.

        Megabytes are real training memory read through ``calibration`` onto the cost model's scale
        (``automl_seg_dints.calibrate``); without one, the cost model's own megabytes."""

        def megabytes(estimated_mb: float) -> str:
            if calibration is None:
                return f"{estimated_mb:.4g}MB estimated"
            return f"{calibration.measured_for(estimated_mb):.4g}MB of training memory"

        if self.fraction is not None:
            fraction = self.fraction
        elif self.megabytes is None:
            raise ConfigError(f"the memory budget sets neither a fraction nor megabytes; {HELP}")
        elif calibration is None:
            fraction = self.megabytes / reference_full_mb
        else:
            fraction = calibration.estimated_for(self.megabytes) / reference_full_mb
        if fraction < minimum_fraction:
            raise ConfigError(
                f"memory budget {self.describe()} is below the smallest architecture of this search space "
                f"({minimum_fraction:.4g} of the full supernet = {megabytes(minimum_fraction * reference_full_mb)} "
                "at this batch and patch); raise the budget or reduce num_blocks"
            )
        if fraction > 1.0:
            log.warning(
                "memory budget %s is above the full supernet's %s at this batch and patch: the search runs "
                "unconstrained (fraction 1)",
                self.describe(),
                megabytes(reference_full_mb),
            )
        return min(fraction, 1.0)

    def describe(self) -> str:
        return f"{self.megabytes:g}MB" if self.megabytes is not None else f"{self.fraction:g}"


def parse_memory_budget(value: float | int | str) -> MemoryBudget:
    """``0.5`` / ``"0.5"`` -> fraction; ``"900MB"`` / ``"1.5GB"`` -> megabytes; anything else: ConfigError."""
    if isinstance(value, bool):
        raise ConfigError(f"invalid memory budget {value!r}; {HELP}")
    if isinstance(value, str):
        match = _ABSOLUTE.match(value)
        if match:
            megabytes = float(match["value"]) * _UNIT_MB[match["unit"].upper()]
            if megabytes <= 0:
                raise ConfigError(f"invalid memory budget {value!r}: must be more than 0MB; {HELP}")
            return MemoryBudget(megabytes=megabytes)
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"invalid memory budget {value!r}; {HELP}") from None
    fraction = float(value)
    if not 0 < fraction <= 1:
        raise ConfigError(f"invalid memory budget {value!r}: a fraction must be in (0, 1]; {HELP}")
    return MemoryBudget(fraction=fraction)
