"""Keep-largest-component postprocessing: the operation, the choice on validation, bad class names."""

from __future__ import annotations

import numpy as np
import pytest

from automl_seg.engine.postprocess import Postprocessing, case_dice_pairs, choose, largest_component, parse_keep_largest
from automl_seg.errors import ConfigError
from automl_seg.testing.fixtures import tiny_plan

PLAN = tiny_plan((16, 16, 16))  # classes class1, class2


def _labels() -> np.ndarray:
    """class1: a 3^3 blob and a stray voxel; class2: one 2^3 blob."""
    labels = np.zeros((12, 12, 12), dtype=np.int64)
    labels[1:4, 1:4, 1:4] = 1
    labels[9, 9, 9] = 1
    labels[6:8, 6:8, 6:8] = 2
    return labels


def test_largest_component_drops_the_rest_of_that_class_only() -> None:
    labels = _labels()
    assert largest_component(labels == 1).sum() == 27
    kept = Postprocessing(keep_largest=("class1",)).apply(labels, PLAN)
    assert kept[9, 9, 9] == 0 and (kept == 1).sum() == 27 and (kept == 2).sum() == 8
    assert np.array_equal(Postprocessing().apply(labels, PLAN), labels)
    assert not largest_component(np.zeros((4, 4, 4), dtype=bool)).any()


def test_chosen_only_where_it_raises_the_dice() -> None:
    truth = _labels()
    truth[9, 9, 9] = 0  # the stray voxel is a false positive
    pairs = case_dice_pairs(_labels(), truth, PLAN)
    assert pairs["class1"][1] > pairs["class1"][0] and pairs["class2"][0] == pairs["class2"][1]
    decision = choose([pairs], PLAN)
    assert decision.keep_largest == ("class1",)
    assert decision.dice_gain["class1"] > 0 and decision.dice_gain["class2"] == 0
    truth_with_second_part = _labels()  # the stray voxel is real: keeping the largest loses it
    assert choose([case_dice_pairs(_labels(), truth_with_second_part, PLAN)], PLAN).keep_largest == ()


def test_a_decision_for_a_class_that_does_not_exist_is_one_error() -> None:
    with pytest.raises(ConfigError, match="names class\\(es\\) liver that Task99_Synthetic does not have; its classes"):
        parse_keep_largest("class1,liver", PLAN)
    assert parse_keep_largest("none", PLAN).keep_largest == ()
    assert parse_keep_largest("class2", PLAN).keep_largest == ("class2",)
