"""``ExporterContract``: what every exporter must do, as a pytest class to subclass.

Override the ``exporter`` fixture (and optionally ``model``, ``side``, ``example``, ``options``, ``atol``:
every setting is a fixture)::

    class TestMyExporter(ExporterContract):
        @pytest.fixture
        def exporter(self):
            return MyExporter()
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from automl_seg.interfaces import Exporter, ExportOptions, ExportSubject
from automl_seg.testing import checks
from automl_seg.testing.tiny_task import FixtureSettings


def tiny_network_config(in_channels: int = 1, num_classes: int = 3) -> dict[str, Any]:
    """A small MONAI U-Net (two levels) as a MONAI bundle config item (as a space's ``monai_network_config``)."""
    return {
        "_target_": "monai.networks.nets.UNet",
        "spatial_dims": 3,
        "in_channels": in_channels,
        "out_channels": num_classes,
        "channels": [4, 8],
        "strides": [2],
        "num_res_units": 0,
    }


def tiny_network(in_channels: int = 1, num_classes: int = 3) -> nn.Module:
    """``tiny_network_config``'s U-Net, seeded: stands in for a trained segmentation network."""
    from monai.networks.nets import UNet

    config = {k: v for k, v in tiny_network_config(in_channels, num_classes).items() if k != "_target_"}
    torch.manual_seed(0)
    return UNet(**config).eval()


def tiny_subject(model_config: dict[str, Any] | None = None) -> ExportSubject:
    """A registered model as whole-model exporters get it: the kit's tiny plan, its preprocessing and
    ``model_config`` (default ``tiny_network_config()``) as the MONAI network config."""
    from automl_seg.data.transforms import IMAGE, preprocessing_config
    from automl_seg.testing.fixtures import tiny_plan

    plan = tiny_plan()
    return ExportSubject(
        ref="tiny:1",
        name="tiny",
        version=1,
        plan=plan,
        space="tiny",
        space_version="1",
        network_config=model_config or tiny_network_config(plan.in_channels, plan.num_classes),
        preprocessing=preprocessing_config(plan, (IMAGE,)),
        metrics={"dice_mean": 0.5},
        input_range=(-3.0, 3.0),
        card="# tiny:1\n",
        description="a tiny test model",
    )


class ExporterContract(FixtureSettings):
    """Subclass and override the ``exporter`` fixture; every ``test_*`` here then runs on it."""

    @pytest.fixture
    def exporter(self) -> Exporter:
        pytest.fail("override the `exporter` fixture to return the exporter under test")

    @pytest.fixture
    def model(self) -> nn.Module:
        return tiny_network()

    @pytest.fixture
    def subject(self) -> ExportSubject:
        """The registered model behind ``model``, for exporters of whole models (``export_model``): override
        it with ``model`` when the exporter needs one (its ``network_config`` must build ``model``)."""
        return tiny_subject()

    @pytest.fixture
    def options(self) -> ExportOptions:
        return ExportOptions()

    @pytest.fixture
    def atol(self) -> float:
        """Max abs logit difference allowed between torch and the artefact (fp32)."""
        return 1e-3

    @pytest.fixture
    def side(self) -> int:
        """Spatial side of the example input (a multiple of ``ExportOptions.spatial_multiple``)."""
        return 16

    @pytest.fixture
    def example(self, model: nn.Module, side: int) -> torch.Tensor:
        in_channels = next(p for p in model.parameters()).shape[1]
        return torch.randn(1, in_channels, side, side, side, generator=torch.Generator().manual_seed(0))

    @pytest.fixture
    def roundtrip(
        self,
        exporter: Exporter,
        model: nn.Module,
        example: torch.Tensor,
        options: ExportOptions,
        atol: float,
        subject: ExportSubject,
        tmp_path: Path,
    ) -> Callable[[list[torch.Tensor]], None]:
        """``roundtrip(extra_inputs)``: export ``model`` traced on ``example`` and check that the artefact
        computes torch's logits (within ``atol``) for ``example`` and each of ``extra_inputs``."""

        def check(extra_inputs: list[torch.Tensor]) -> None:
            checks.check_export_roundtrip(
                exporter, model, example, tmp_path, options, atol=atol, extra_inputs=extra_inputs, subject=subject
            )

        return check

    def test_host_admits_exporter(self, exporter: Exporter) -> None:
        checks.check_identity("exporter", exporter)

    def test_artefact_computes_what_the_model_computes(
        self, example: torch.Tensor, roundtrip: Callable[[list[torch.Tensor]], None]
    ) -> None:
        """Same logits as torch, also for a batch of 3 (sliding-window inference feeds batches of windows)."""
        roundtrip([torch.cat([example, example.flip(-1), example * 0.5])])

    def test_dynamic_spatial_sizes(
        self, example: torch.Tensor, options: ExportOptions, roundtrip: Callable[[list[torch.Tensor]], None]
    ) -> None:
        """With ``dynamic_spatial``, any multiple of ``spatial_multiple`` works, not only the example's size."""
        if not options.dynamic_spatial:
            pytest.skip("options ask for a static spatial shape")
        step = options.spatial_multiple
        depth, height, width = example.shape[2:]  # the example's own sides, whichever fixture made it
        roundtrip([torch.randn(1, example.shape[1], depth + step, height, width + 2 * step)])
