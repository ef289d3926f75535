import gc

import pytest
import torch

from automl_seg.memory import current_rss_mb, device_peak_mb, reset_peak, reset_peak_rss


def _touch_mb(mb: int) -> None:
    block = torch.ones(mb * 2**20 // 4)  # written, so resident
    del block
    gc.collect()


def test_a_new_peak_window_forgets_an_earlier_run() -> None:
    if not reset_peak_rss():
        pytest.skip("no resettable peak-RSS counter on this platform")
    cpu = torch.device("cpu")
    reset_peak(cpu)
    _touch_mb(300)
    first = device_peak_mb(cpu)
    reset_peak(cpu)
    second = device_peak_mb(cpu)
    assert first >= current_rss_mb() + 200  # the 300 MB block was counted while it lived
    assert second < first - 200  # and the next window no longer includes it
