import pytest
import torch
import torch.nn.functional as F

from prunestudy.conv3x3 import Conv3x3, weight_grad


@pytest.mark.parametrize("hw", [(2, 2), (1, 1), (2, 1), (3, 5)])
@pytest.mark.parametrize("channels_last", [True, False])
def test_weight_grad_equals_the_convolutions(hw, channels_last):
    torch.manual_seed(0)
    x = torch.randn(5, 7, *hw, dtype=torch.float64)
    w = torch.randn(11, 7, 3, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(5, 11, *hw, dtype=torch.float64)
    if channels_last:
        x, g = (t.contiguous(memory_format=torch.channels_last) for t in (x, g))
    F.conv2d(x, w, padding=1).backward(g)
    torch.testing.assert_close(weight_grad(x, g), w.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [2, 8])
def test_layer_matches_nn_conv2d_forward_and_backward(size):
    """2x2 maps take the GEMM weight gradient, 8x8 the library kernel; both equal nn.Conv2d."""
    torch.manual_seed(0)
    ours = Conv3x3(16, 24).to(memory_format=torch.channels_last)
    ref = torch.nn.Conv2d(16, 24, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    ref.weight.data.copy_(ours.weight.data)
    x = torch.randn(64, 16, size, size).contiguous(memory_format=torch.channels_last)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    outs = [ours(xs[0]), ref(xs[1])]
    assert ("GemmWeightGrad" in type(outs[0].grad_fn).__name__) == (size == 2)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    g = torch.randn_like(outs[0])
    for o in outs:
        o.backward(g)
    torch.testing.assert_close(xs[0].grad, xs[1].grad, rtol=0, atol=0)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)
