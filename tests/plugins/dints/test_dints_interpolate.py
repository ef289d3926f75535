import pytest
import torch
import torch.nn.functional as F
from automl_seg_dints.interpolate import SeparableTrilinear, use_separable_trilinear
from torch import nn


@pytest.mark.parametrize(
    ("shape", "scale"),
    [((2, 3, 6, 8, 5), 2.0), ((1, 2, 16, 12, 8), 0.5), ((1, 1, 16, 24, 8), 0.25), ((1, 2, 1, 4, 3), 2.0)],
)
def test_separable_trilinear_equals_pytorch_forward_and_backward(shape: tuple[int, ...], scale: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ours = SeparableTrilinear(scale)(x)
    reference = F.interpolate(x, scale_factor=scale, mode="trilinear", align_corners=True)
    assert ours.shape == reference.shape
    torch.testing.assert_close(ours, reference)
    grad = torch.randn_like(ours)
    (ours_grad,) = torch.autograd.grad(ours, x, grad)
    (reference_grad,) = torch.autograd.grad(reference, x, grad)
    torch.testing.assert_close(ours_grad, reference_grad)


def test_swap_keeps_other_upsampling_and_the_state_dict() -> None:
    model = nn.Sequential(
        nn.Upsample(scale_factor=2, mode="trilinear", align_corners=True),
        nn.Conv3d(1, 1, 1),
        nn.Upsample(scale_factor=2, mode="nearest"),
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    use_separable_trilinear(model)
    assert isinstance(model[0], SeparableTrilinear)
    assert isinstance(model[2], nn.Upsample)
    assert before.keys() == model.state_dict().keys()
