"""The 3x3 convolution of every WRN block, with a faster CPU weight gradient on 2x2 maps.

On the smallest maps (a 3x3 conv at stride 1 whose output is at most 2x2: the last stage of a WRN on
8x8 digits) oneDNN's backward-weights kernel is three times slower than the GEMM it amounts to:
2.8 ms against 0.9 ms for 128->128 channels at batch 64 on 2 AVX2 cores, which is a fifth of a WRN-40-2
training step. There the weight gradient is computed as that GEMM over the nine shifted copies of the
padded input (im2col, each copy a slice); the forward and the input gradient stay oneDNN's. On larger
maps and on CUDA the layer is a plain ``nn.Conv2d``: there the library kernels win or tie.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MAX_GEMM_POSITIONS = 4  # output positions (H x W) up to which the weight gradient is a GEMM


class Conv3x3(nn.Conv2d):
    """3x3, padding 1, no bias; the parameters and state-dict keys of ``nn.Conv2d``."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(cin, cout, 3, stride=stride, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            self.stride == (1, 1)
            and x.device.type == "cpu"
            and torch.is_grad_enabled()
            and x.shape[-2] * x.shape[-1] <= MAX_GEMM_POSITIONS
        ):
            return _GemmWeightGrad.apply(x, self.weight)
        return super().forward(x)


class _GemmWeightGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return F.conv2d(x, weight, padding=1)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False]
            )[0]
        if ctx.needs_input_grad[1]:
            grad_w = weight_grad(x, grad_out)
        return grad_x, grad_w


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """d(loss)/d(weight) of a stride-1, padding-1 3x3 conv: grad_out^T @ im2col(x), in NHWC order."""
    n, c, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # N, H+2, W+2, C
    cols = torch.stack([padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)], dim=3)
    g = grad_out.permute(0, 2, 3, 1).reshape(n * h * w, -1)
    return (g.t() @ cols.reshape(n * h * w, 9 * c)).view(-1, 3, 3, c).permute(0, 3, 1, 2)
