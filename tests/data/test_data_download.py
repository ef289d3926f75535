"""The MSD download path, driven offline: MONAI checks the md5 of a local archive and extracts it."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
from monai.apps import DecathlonDataset

from automl_seg.config import DataSettings
from automl_seg.data import prepare_data
from automl_seg.data.synthetic import make_synthetic_msd
from automl_seg.errors import DataError

TASK = "Task99_Synthetic"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A tar of a synthetic task, laid out like MONAI's Decathlon archives (``<task>/...``)."""
    make_synthetic_msd(tmp_path / "source", num_cases=3, shape=(16, 16, 16))
    path = tmp_path / "archives" / f"{TASK}.tar"
    path.parent.mkdir()
    with tarfile.open(path, "w") as tar:
        tar.add(tmp_path / "source" / TASK, arcname=TASK)
    return path


def _register(monkeypatch: pytest.MonkeyPatch, url: str, md5: str) -> None:
    monkeypatch.setitem(DecathlonDataset.resource, TASK, url)
    monkeypatch.setitem(DecathlonDataset.md5, TASK, md5)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_from_url_is_checksummed_and_extracted(tmp_path, archive, monkeypatch):
    _register(monkeypatch, archive.as_uri(), _md5(archive))
    root = tmp_path / "data"
    root.mkdir()
    data = prepare_data(DataSettings(dataset=TASK, data_root=root), progress=False)
    assert data.fingerprint.num_cases == 3
    assert (root / TASK / "dataset.json").is_file() and not (root / f"{TASK}.tar").exists()


def test_default_cache_root_is_created_for_downloads(archive, monkeypatch):
    monkeypatch.delenv("AUTOML_SEG_DATA", raising=False)
    _register(monkeypatch, archive.as_uri(), _md5(archive))
    data = prepare_data(DataSettings(dataset=TASK), progress=False)
    assert data.info.root.parent.name == "data" and "cache" in str(data.info.root)  # XDG_CACHE_HOME of the test


def test_pre_placed_archive_is_used_without_network(tmp_path, archive, monkeypatch):
    _register(monkeypatch, "https://invalid.invalid/none.tar", _md5(archive))
    root = tmp_path / "data"
    root.mkdir()
    archive.rename(root / f"{TASK}.tar")
    assert prepare_data(DataSettings(dataset=TASK, data_root=root), progress=False).fingerprint.num_cases == 3


def test_wrong_checksum_is_a_clear_error(tmp_path, archive, monkeypatch):
    _register(monkeypatch, archive.as_uri(), "0" * 32)
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError) as exc:
        prepare_data(DataSettings(dataset=TASK, data_root=root), progress=False)
    message = str(exc.value)
    assert "could not download Task99_Synthetic" in message and "hash" in message.lower() and "\n" not in message
    assert not (root / TASK).exists()


def test_failed_download_says_where_to_put_the_task(tmp_path, monkeypatch):
    _register(monkeypatch, (tmp_path / "missing.tar").as_uri(), "0" * 32)
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError) as exc:
        prepare_data(DataSettings(dataset=TASK, data_root=root), progress=False)
    assert f"so that {root / TASK / 'dataset.json'} exists" in str(exc.value)
