"""ganlib.layers against independent computations: equalized-LR statistics, pixel norm, minibatch stddev."""
import math

import pytest
import torch

from ganlib.layers import Blur, EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, downsample2x, upsample2x



def _effective_linear_weight(layer: EqualizedLinear) -> torch.Tensor:
    """Recover W_eff from behaviour: feeding the identity returns W_eff^T plus the bias."""
    n_in = layer.weight.shape[1]
    with torch.no_grad():
        out = layer(torch.eye(n_in))
        if layer.bias is not None:
            out = out - layer(torch.zeros(1, n_in))
    return out.T


def _effective_conv_weight(layer: EqualizedConv2d) -> torch.Tensor:
    """Recover the run-time kernel from the response to unit impulses, one input channel at a time."""
    c_out, c_in, k, _ = layer.weight.shape
    size, centre, pad = 2 * k + 1, k, k // 2
    kernels = torch.empty(c_out, c_in, k, k)
    with torch.no_grad():
        zero = layer(torch.zeros(1, c_in, size, size))
        for c in range(c_in):
            delta = torch.zeros(1, c_in, size, size)
            delta[0, c, centre, centre] = 1.0
            resp = (layer(delta) - zero)[0]
            # cross-correlation: out[o, y, x] = sum w[o, c, i, j] in[c, y + i - pad, x + j - pad]
            for i in range(k):
                for j in range(k):
                    kernels[:, c, i, j] = resp[:, centre - i + pad, centre - j + pad]
    return kernels


@pytest.mark.parametrize("gain,lr_mul", [(math.sqrt(2), 1.0), (1.0, 1.0), (math.sqrt(2), 0.01)])
def test_equalized_linear_statistics(gain, lr_mul):
    torch.manual_seed(0)
    n_in, n_out = 400, 300
    layer = EqualizedLinear(n_in, n_out, gain=gain, lr_mul=lr_mul)
    # stored parameters: N(0, 1/lr_mul^2), so Adam sees the same scale in every layer
    assert layer.weight.std().item() * lr_mul == pytest.approx(1.0, rel=0.02)
    w_eff = _effective_linear_weight(layer)
    assert w_eff.shape == (n_out, n_in)
    assert w_eff.std().item() == pytest.approx(gain / math.sqrt(n_in), rel=0.02)
    # He-style consequence: unit-variance inputs give outputs of variance gain^2
    y = layer(torch.randn(2000, n_in))
    assert y.var().item() == pytest.approx(gain**2, rel=0.05)


def test_equalized_linear_bias_lr_mul():
    layer = EqualizedLinear(3, 2, lr_mul=0.1, bias_init=1.0)
    with torch.no_grad():
        out = layer(torch.zeros(1, 3))
    assert torch.allclose(out, torch.ones(1, 2))  # bias_init is the effective bias, whatever lr_mul is


@pytest.mark.parametrize("k,gain", [(3, math.sqrt(2)), (1, 1.0)])
def test_equalized_conv_statistics(k, gain):
    torch.manual_seed(1)
    c_in, c_out = 48, 64
    layer = EqualizedConv2d(c_in, c_out, k, gain=gain)
    assert layer.weight.std().item() == pytest.approx(1.0, rel=0.03)
    kernels = _effective_conv_weight(layer)
    fan_in = c_in * k * k
    assert torch.allclose(kernels, layer.weight.detach() * gain / math.sqrt(fan_in), atol=1e-6)
    assert kernels.std().item() == pytest.approx(gain / math.sqrt(fan_in), rel=0.03)
    assert layer(torch.randn(2, c_in, 8, 8)).shape == (2, c_out, 8, 8)  # 'same' padding


def test_pixel_norm_unit_rms():
    torch.manual_seed(2)
    x = torch.randn(5, 16, 4, 4) * torch.logspace(-2, 3, 5).view(5, 1, 1, 1)
    y = PixelNorm()(x)
    rms = y.pow(2).mean(dim=1).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-4)
    # direction per pixel unchanged: y is a positive multiple of x
    cos = torch.nn.functional.cosine_similarity(x, y, dim=1)
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)


def _direct_mbstd(x: torch.Tensor, group: int, eps: float = 1e-8) -> torch.Tensor:
    """Loop version of the official TF layer: strided groups (i mod N/G), biased variance, eps in the sqrt."""
    n = x.shape[0]
    g = min(group, n)
    m = n // g
    out = torch.empty(n, dtype=torch.float64)
    xd = x.double()
    for i in range(n):
        members = [j for j in range(n) if j % m == i % m]
        assert len(members) == g
        grp = xd[members]
        var = ((grp - grp.mean(dim=0)) ** 2).mean(dim=0)
        out[i] = (var + eps).sqrt().mean()
    return out


@pytest.mark.parametrize("n,group", [(8, 4), (12, 4), (4, 4), (2, 4), (6, 2)])
def test_minibatch_stddev_matches_direct(n, group):
    torch.manual_seed(3)
    x = torch.randn(n, 3, 5, 5) * torch.arange(1, n + 1).view(n, 1, 1, 1)  # every sample a different scale
    y = MinibatchStdDev(group)(x)
    assert y.shape == (n, 4, 5, 5)
    assert torch.equal(y[:, :3], x)
    extra = y[:, 3]
    assert torch.equal(extra, extra[:, :1, :1].expand_as(extra))  # one constant map per sample
    assert torch.allclose(extra[:, 0, 0].double(), _direct_mbstd(x, group), rtol=1e-5)


def test_minibatch_stddev_bad_batch():
    with pytest.raises(ValueError, match="divisible"):
        MinibatchStdDev(4)(torch.randn(6, 2, 3, 3))


def test_blur_impulse_response_and_constant():
    blur = Blur()
    delta = torch.zeros(1, 2, 5, 5)
    delta[:, :, 2, 2] = 1.0
    k = torch.tensor([1.0, 2.0, 1.0])
    expected = torch.outer(k, k) / 16
    out = blur(delta)
    assert torch.allclose(out[0, 0, 1:4, 1:4], expected) and torch.allclose(out[0, 1, 1:4, 1:4], expected)
    assert out.sum().item() == pytest.approx(2.0)
    const = blur(torch.full((1, 1, 6, 6), 3.0))
    assert torch.allclose(const[0, 0, 1:-1, 1:-1], torch.full((4, 4), 3.0))  # interior of a constant kept


def test_up_and_down_sampling():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    up = upsample2x(x)
    assert up.shape == (1, 1, 8, 8) and torch.equal(up[0, 0, ::2, ::2], x[0, 0]) and torch.equal(up[0, 0, 1::2, 1::2], x[0, 0])
    down = downsample2x(x)
    assert torch.allclose(down[0, 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))  # 2x2 block means by hand
    assert torch.allclose(downsample2x(upsample2x(x)), x)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_layers_on_gpu_match_cpu():
    torch.manual_seed(4)
    x = torch.randn(8, 6, 4, 4)
    for layer in (MinibatchStdDev(4), PixelNorm(), EqualizedConv2d(6, 5, 3), Blur()):
        cpu = layer(x)
        gpu_out = layer.cuda()(x.cuda()).cpu()
        assert torch.allclose(cpu, gpu_out, atol=1e-4), type(layer).__name__
