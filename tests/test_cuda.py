"""The fast path on a CUDA device (skipped without one): same results as on the CPU.

The GPU kernels differ from the CPU ones (strided ``index_select`` into a slice, fused attention
backends, bf16), so the oracle checks of ``test_ops.py`` and a whole model are run there too."""

import pytest
import torch

import laps
from laps import ops
from tests.helpers import TINY_VIT, TINY_VIT_KW, looped_shift, masked_joint_attention

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def _no_tf32():
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@pytest.mark.parametrize("num_frames, level", [(8, 1), (8, 3), (5, 1), (16, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_frame_group_attention_on_cuda_equals_masked_joint_attention(num_frames, level, dtype):
    base = torch.randn(2 * num_frames, 20, 3, 4, 64, device="cuda", dtype=dtype)  # timm's token-major qkv
    q, k, v = base.permute(2, 0, 3, 1, 4).unbind(0)
    groups = ops.leap_groups(num_frames, level)
    want = masked_joint_attention(*(x.double() for x in (q, k, v)), num_frames, groups)
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    got = ops.frame_group_attention(q, k, v, num_frames, groups)
    torch.testing.assert_close(got.double(), want, atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reorder_and_shift_on_cuda_are_exact(dtype):
    layout = ops.group_layout(ops.leap_groups(8, 2), 8)
    x = torch.randn(16, 20, 4, 64, device="cuda", dtype=dtype, requires_grad=True)
    grouped = ops.reorder(x, ops.Reorder(8, layout, to_groups=True))
    out = ops.reorder(grouped, ops.Reorder(8, layout, to_groups=False, fold=16, memory_order=(0, 2, 3, 1)))
    torch.testing.assert_close(out, looped_shift(x.detach(), 8, 16), rtol=0, atol=0)
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    reference = x.detach().clone().requires_grad_()
    (looped_shift(reference, 8, 16) * weight).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad, rtol=0, atol=0)


@pytest.mark.parametrize("variant", ["base2d", "ps", "la", "laps", "joint", "plain_shift"])
@pytest.mark.parametrize("backbone, kwargs", [(TINY_VIT, TINY_VIT_KW), ("visformer_tiny", {"img_size": 64})])
def test_model_on_cuda_matches_cpu(variant, backbone, kwargs):
    model = laps.create_model(backbone, temporal=variant, num_frames=8, num_classes=5, **kwargs).train()
    gpu_model = laps.create_model(backbone, temporal=variant, num_frames=8, num_classes=5, **kwargs).cuda().train()
    gpu_model.load_state_dict(model.state_dict())
    clips = torch.randn(2, 8, 3, kwargs["img_size"], kwargs["img_size"])
    outputs = []
    for net, x in ((model, clips), (gpu_model, clips.cuda())):
        out = net(x)
        out.square().sum().backward()
        outputs.append((out.cpu(), {name: p.grad.cpu() for name, p in net.named_parameters()}))
    (cpu_out, cpu_grads), (gpu_out, gpu_grads) = outputs
    torch.testing.assert_close(gpu_out, cpu_out, atol=1e-4, rtol=1e-4)
    for name, grad in cpu_grads.items():
        torch.testing.assert_close(gpu_grads[name], grad, atol=1e-3, rtol=1e-3, msg=name)
