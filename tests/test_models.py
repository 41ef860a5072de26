import copy

import torch

from prunestudy.arch.nets.wrn import Block
from prunestudy.arch.wrn import BlockSpec
from prunestudy.training.runtime import Runtime


def test_narrow_strided_projection_has_exact_gradients():
    """A strided 1x1 projection with < 8 input channels, channels_last, on the CPU: oneDNN's strided 1x1
    backward-weights kernel got this wrong on AVX2 (oneDNN#6035); float64 never goes through oneDNN."""
    torch.manual_seed(0)
    rt = Runtime.pick("cpu")
    block = rt.prepare(Block(BlockSpec(0, 2, in_ch=4, mid=3, out_ch=8, stride=2))).train()
    reference = copy.deepcopy(block).double()
    x = torch.randn(32, 4, 32, 32).contiguous(memory_format=torch.channels_last)
    for _ in range(3):  # the wrong kernel also corrupted the heap, which showed on a later call
        for net, inp in ((block, x), (reference, x.double())):
            net.zero_grad()
            net(inp).square().sum().backward()
        for (name, p), q in zip(block.named_parameters(), reference.parameters(), strict=True):
            scale = float(q.grad.abs().max())  # float32 rounding is ~1e-6 of it; the faulty kernel was off by ~0.3
            torch.testing.assert_close(p.grad.double(), q.grad, rtol=0, atol=1e-4 * scale, msg=name)
