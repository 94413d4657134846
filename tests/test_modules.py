"""PyTorch modules equal the NumPy references and work across shapes, dtypes and layouts."""

import numpy as np
import pytest
import torch

from utils import reference as R
from utils.modules import CBAM, ChannelAttention, SpatialAttention, SqueezeExcitation


def data(seed=0, b=2, c=8, h=5, w=7):
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=(b, c, h, w))


def as_torch(x):
    return torch.from_numpy(np.ascontiguousarray(x))


def test_se_equals_the_reference_in_float64():
    rng, x = data()
    p = R.init_mlp(8, 4, rng)
    module = SqueezeExcitation(8, 4).double().load_reference(p)
    torch.testing.assert_close(module(as_torch(x)), as_torch(R.se_forward(x, p)[0]),
                               rtol=1e-12, atol=1e-12)


def test_channel_attention_equals_the_reference_in_float64():
    rng, x = data(1)
    p = R.init_mlp(8, 2, rng)
    module = ChannelAttention(8, 2).double().load_reference(p)
    torch.testing.assert_close(module(as_torch(x)),
                               as_torch(R.channel_attention_forward(x, p)[0]),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [3, 7])
def test_spatial_attention_equals_the_reference_in_float64(kernel):
    rng, x = data(2, h=9, w=6)
    sp = {"w": rng.normal(size=(1, 2, kernel, kernel)), "b": rng.normal(size=1)}
    module = SpatialAttention(8, kernel).double().load_reference(sp)
    torch.testing.assert_close(module(as_torch(x)),
                               as_torch(R.spatial_attention_forward(x, sp)[0]),
                               rtol=1e-12, atol=1e-12)


def test_official_spatial_variant_stacks_max_first_and_has_batch_norm():
    rng, x = data(3)
    sp = {"w": rng.normal(size=(1, 2, 7, 7)), "b": np.zeros(1)}
    module = SpatialAttention(8, 7, variant="official").double().load_reference(sp).eval()
    assert module.conv.bias is None and isinstance(module.bn, torch.nn.BatchNorm2d)
    expected = R.spatial_attention_forward(x, sp, "max-mean")[0]     # BN is identity at init
    torch.testing.assert_close(module(as_torch(x)), as_torch(expected), rtol=1e-5, atol=1e-6)


def test_cbam_equals_the_reference_and_its_orders_differ():
    rng, x = data(4)
    params = {"channel": R.init_mlp(8, 4, rng),
              "spatial": {"w": rng.normal(size=(1, 2, 7, 7)) * 0.3, "b": rng.normal(size=1)}}
    outs = {}
    for order in ("channel-spatial", "spatial-channel", "parallel"):
        module = CBAM(8, 4, order=order).double().load_reference(params)
        outs[order] = module(as_torch(x))
    torch.testing.assert_close(outs["channel-spatial"], as_torch(R.cbam_forward(x, params)[0]),
                               rtol=1e-12, atol=1e-12)
    ca = R.channel_attention_forward(x, params["channel"])[0]
    expected_sc = R.channel_attention_forward(
        R.spatial_attention_forward(x, params["spatial"])[0], params["channel"])[0]
    torch.testing.assert_close(outs["spatial-channel"], as_torch(expected_sc), rtol=1e-12,
                               atol=1e-12)
    ms = R.spatial_attention_forward(x, params["spatial"])[0] / x
    torch.testing.assert_close(outs["parallel"], as_torch(ca * ms), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("make", [lambda: SqueezeExcitation(16, 4), lambda: ChannelAttention(16),
                                  lambda: SpatialAttention(16), lambda: CBAM(16, 4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_modules_run_in_low_precision_and_channels_last(make, dtype):
    torch.manual_seed(0)
    module = make()
    x = torch.randn(2, 16, 9, 5)
    reference = module(x)
    low = module.to(dtype)(x.to(dtype).contiguous(memory_format=torch.channels_last))
    assert low.dtype == dtype and low.shape == (2, 16, 9, 5)
    tol = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(low.float(), reference, rtol=tol, atol=tol)


def test_gradients_flow_and_attention_can_be_kept():
    module = CBAM(8, 2)
    module.channel.keep_attention = module.spatial.keep_attention = True
    x = torch.randn(3, 8, 6, 4, requires_grad=True)
    module(x).sum().backward()
    assert x.grad is not None and module.channel.fc1.weight.grad is not None
    assert module.channel.attention.shape == (3, 8) and module.spatial.attention.shape == (3, 6, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_modules_run_on_cuda():
    module = CBAM(16, 4).cuda()
    assert module(torch.randn(2, 16, 8, 8, device="cuda")).is_cuda


@pytest.mark.parametrize("call, message", [
    (lambda: SqueezeExcitation(8, 16), r"reduction \(16\) must not exceed channels \(8\)"),
    (lambda: SqueezeExcitation(8, 2)(torch.zeros(1, 4, 3, 3)), "built for 8 channels, got x with 4"),
    (lambda: ChannelAttention(8, 2)(torch.zeros(8, 3, 3)), r"expects x of shape \(B, C, H, W\)"),
    (lambda: SpatialAttention(8, kernel_size=4), "kernel_size must be odd"),
    (lambda: SpatialAttention(8, variant="v2"), "variant must be one of"),
    (lambda: CBAM(8, 2, order="both"), "order must be one of"),
    (lambda: SqueezeExcitation(8, 2).load_reference(
        {"w1": np.zeros((3, 8)), "b1": 0, "w2": 0, "b2": 0}), r"params\['w1'\] must have shape"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
