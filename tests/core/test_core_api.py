"""``automl_seg.api``'s trained-model helpers: what an observer or exporter plugin loads a record with."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def _fixed_record(filters: list[int]):  # noqa: ANN202 (the registry's record type)
    from automl_seg_registry import ArchitectureRecord
    from automl_seg_registry.schema import DatasetRef, SpaceRef, StrategyRef

    args = {
        "in_channels": 1, "out_channels": 3, "kernel_size": [[3, 3, 3]] * 3,
        "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]], "filters": filters, "norm_name": "instance", "res_block": False,
    }  # fmt: skip
    return ArchitectureRecord(
        name="fixed-Task99_Synthetic",
        space=SpaceRef(name="fixed", version="1", args=args),
        arch={},
        strategy=StrategyRef(name="fixed", settings={}),
        dataset=DatasetRef(name="Task99_Synthetic", fingerprint_hash="f" * 16, plan={}),
        seed=0,
    )


def test_trained_network_is_the_records_network_with_the_files_weights(tmp_path: Path) -> None:
    from automl_seg.api import new_network, trained_network
    from automl_seg.plugins import load_plugins

    record = _fixed_record([8, 16, 32])
    trained = new_network(load_plugins().space("fixed"), record.space.args, {}, seed=1)
    torch.save(trained.state_dict(), tmp_path / "weights.pt")
    loaded = trained_network(record, tmp_path / "weights.pt")
    assert not loaded.training
    image = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded(image), trained.eval()(image))


def test_trained_network_refuses_weights_of_another_architecture_in_one_line(tmp_path: Path) -> None:
    from automl_seg.api import new_network, trained_network
    from automl_seg.errors import RegistryError
    from automl_seg.plugins import load_plugins

    other = _fixed_record([4, 8, 16])
    torch.save(new_network(load_plugins().space("fixed"), other.space.args, {}, seed=1).state_dict(), tmp_path / "w.pt")
    with pytest.raises(RegistryError, match=r"do not fit its architecture"):
        trained_network(_fixed_record([8, 16, 32]), tmp_path / "w.pt")
    (tmp_path / "junk.pt").write_text("not weights")
    with pytest.raises(RegistryError, match=r"cannot be read"):
        trained_network(_fixed_record([8, 16, 32]), tmp_path / "junk.pt")
