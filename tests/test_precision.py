"""Fast paths of the Trainer: bf16/fp16 autocast for every family, channels-last, compile, reused fakes, auto."""
import json

import pytest
import torch
from torch import nn

import ganlib
from ganlib import data, losses, precision
from ganlib.models import MLPDiscriminator, MLPGenerator
from ganlib.train import Trainer

CPU = torch.device("cpu")


def images(channels=1, n=32, labels=False, batch=8):
    x = torch.rand(n, channels, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = torch.arange(n) % 4 if labels else None
    return data.TensorSource(x, y, batch_size=batch)


def conv_dtypes(*nets):
    """Record the output dtype of every convolution and linear layer during the forward passes that follow."""
    from ganlib.layers import EqualizedConv2d, EqualizedLinear
    from ganlib.models.stylegan import ModulatedConv2d
    layers = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, EqualizedConv2d, EqualizedLinear, ModulatedConv2d)
    seen = []
    for net in nets:
        for m in net.modules():
            if isinstance(m, layers):
                m.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    return seen


def family(name):
    """A tiny G, D, source and trainer settings per family (each with the penalty its chapter uses)."""
    from ganlib.models import cgan, dcgan, stylegan
    r1 = dict(d_penalty=losses.r1_regularizer(1.0), d_penalty_every=1)
    gp = dict(d_penalty=lambda D, real, fake, y: 10 * losses.gradient_penalty(D, real, fake))
    if name == "mlp":
        return (MLPGenerator(hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2),
                data.SamplerSource(data.toy("ring").sample, 16), gp)
    if name == "dcgan":
        return dcgan.Generator(z_dim=8, image_size=32, channels=1, width=4), dcgan.Discriminator(32, 1, 4), images(), {}
    if name.startswith("cgan"):
        mode = name.split("-")[1]
        return (cgan.ConditionalGenerator(4, 8, 32, 1, 4, conditioning=mode),
                cgan.ConditionalDiscriminator(4, 32, 1, 4, conditioning=mode), images(labels=True), {})
    kwargs = dict(modulation="demod") if name == "stylegan-demod" else {}
    return (stylegan.StyleGenerator(z_dim=8, w_dim=8, mapping_depth=2, img_channels=1, fmap_base=64, fmap_max=4, **kwargs),
            stylegan.StyleDiscriminator(img_channels=1, fmap_base=64, fmap_max=4), images(), r1)


def bce(**kwargs):
    return dict(d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating, progress=False, device=CPU,
                log_every=1, **kwargs)


def flat(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize("name", ["mlp", "dcgan", "cgan-onehot", "cgan-embed", "cgan-projection", "stylegan",
                                  "stylegan-demod"])
def test_bf16_step_runs_in_bf16_for_every_family(name):
    ganlib.seed_everything(0)
    G, D, source, extra = family(name)
    before = flat(G)
    seen = conv_dtypes(G, D)
    trainer = Trainer(G, D, source, precision="bf16", **bce(**extra))
    trainer.fit(2)
    assert torch.bfloat16 in seen  # autocast was on: the layers computed in bf16 ...
    assert all(p.dtype == torch.float32 for p in list(G.parameters()) + list(D.parameters()))  # ... weights stay fp32
    assert all(torch.isfinite(torch.tensor(v)).all() for v in trainer.history["d_loss"] + trainer.history["g_loss"])
    assert not torch.equal(before, flat(G))
    if "d_penalty" in extra:
        assert torch.isfinite(torch.tensor(trainer.history["d_penalty"])).all()


def test_bf16_lapgan_levels_and_pggan_growth():
    from ganlib.experiments.lapgan import make_level_trainer
    from ganlib.experiments.progressive import ProgressiveSchedule, make_trainer
    from ganlib.models import lapgan, pggan
    ganlib.seed_everything(0)
    model = lapgan.LapGAN(z_dim=8, base_hidden=4, hidden=(4, 4), kernel=3, base="conv")
    x = torch.rand(32, 1, 32, 32) * 2 - 1
    for k in range(3):
        trainer = make_level_trainer(model, k, x, batch_size=8, precision="bf16", progress=False, device=CPU)
        trainer.fit(2)
        assert torch.isfinite(torch.tensor(trainer.history["g_loss"])).all()
    G, D = pggan.PGGANGenerator(z_dim=8, channels=(4, 4, 4, 4)), pggan.PGGANDiscriminator(channels=(4, 4, 4, 4))
    seen = conv_dtypes(G, D)
    trainer = make_trainer(G, D, images(), ProgressiveSchedule(4, 1), gp_at="current", precision="bf16",
                           progress=False, device=CPU, log_every=1)
    trainer.fit(3)  # 4x4, a fade to 8x8 with the gradient penalty, 8x8
    assert torch.bfloat16 in seen and G.stage == (1, 1.0)
    assert torch.isfinite(torch.tensor(trainer.history["d_penalty"])).all()


def test_stylegan_bf16_forward_keeps_w_avg_fp32_and_r1_matches_fp32():
    from ganlib.losses import r1_penalty
    from ganlib.models.stylegan import StyleDiscriminator, StyleGenerator
    ganlib.seed_everything(0)
    G = StyleGenerator(z_dim=16, w_dim=16, mapping_depth=3, fmap_base=128, fmap_max=8)
    D = StyleDiscriminator(fmap_base=128, fmap_max=8)
    z = torch.randn(8, 16)
    w_avg = G.w_avg.clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = G(z)                                 # crashed at the w_avg lerp before the fix
        w = G.mapping(z)
    assert x.shape == (8, 3, 32, 32) and w.dtype == torch.bfloat16
    assert G.w_avg.dtype == torch.float32
    expected = 0.995 * w_avg + 0.005 * w.float().mean(0)  # the EMA of Appendix B, computed here in fp32
    assert torch.allclose(G.w_avg, expected, atol=1e-4)
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    exact = r1_penalty(D, real)
    exact_grads = torch.autograd.grad(exact, list(D.parameters()), allow_unused=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = r1_penalty(D, real)
    low.backward()  # the double backward of R1 runs through the bf16 graph
    assert low.dtype == torch.float32 and torch.isfinite(low)
    assert low.item() == pytest.approx(exact.item(), rel=0.1)
    # R1's gradient reaches the same weights (the last bias does not change the input gradient, so it gets none)
    assert [p.grad is None for p in D.parameters()] == [g is None for g in exact_grads]
    low_grad = torch.cat([p.grad.flatten() for p in D.parameters() if p.grad is not None])
    exact_grad = torch.cat([g.flatten() for g in exact_grads if g is not None])
    assert torch.cosine_similarity(low_grad, exact_grad, dim=0) > 0.99  # and points the same way, as long
    assert low_grad.norm() / exact_grad.norm() == pytest.approx(1.0, abs=0.05)


def test_channels_last_trains_like_the_default_layout():
    from ganlib.models import dcgan
    runs = []
    for channels_last in (False, True):
        ganlib.seed_everything(0)
        G, D = dcgan.Generator(z_dim=8, image_size=32, channels=1, width=4), dcgan.Discriminator(32, 1, 4)
        trainer = Trainer(G, D, images(), channels_last=channels_last, **bce())
        trainer.fit(3)
        runs.append(trainer)
    conv = runs[1].G.net[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert torch.allclose(flat(runs[0].G), flat(runs[1].G), atol=1e-5)
    assert torch.allclose(flat(runs[0].D), flat(runs[1].D), atol=1e-5)


def test_reuse_fakes_runs_one_generator_forward_per_step():
    def counted(reuse):
        ganlib.seed_everything(0)
        G, D, source, extra = family("dcgan")
        calls = []
        G.register_forward_hook(lambda m, args, out: calls.append(out))
        D_inputs = []
        D.register_forward_pre_hook(lambda m, args: D_inputs.append(args[0]))
        Trainer(G, D, source, reuse_fakes=reuse, n_critic=2, **bce()).fit(3)
        return calls, D_inputs

    fresh, _ = counted(False)
    reused, d_inputs = counted(True)
    assert len(fresh) == 3 * 3 and len(reused) == 3 * 2  # (2 D steps + 1 G step) vs 2 D steps per step
    # G's step judged the very samples the last D step made (pytorch/examples' loop), still attached to G's graph
    # D's inputs in step 1: real, fake, real, fake (D steps), fake (G step); the last two are G's second output
    assert torch.equal(d_inputs[3], reused[1].detach()) and torch.equal(d_inputs[4], reused[1].detach())
    assert reused[1].requires_grad and not reused[0].requires_grad


@pytest.mark.slow
def test_compiled_forwards_train_like_eager_with_r1_on_the_eager_discriminator():
    runs = []
    for compiled in (False, True):
        ganlib.seed_everything(0)
        G, D, source, extra = family("mlp")
        penalty = dict(d_penalty=lambda D, real, fake, y: losses.r1_penalty(D, real))
        trainer = Trainer(G, D, source, compile=compiled, **bce(**penalty))
        trainer.fit(3)
        runs.append(trainer)
    assert runs[1].nets.d_train is not runs[1].D and runs[1].nets.d_penalty is runs[1].D
    assert torch.allclose(flat(runs[0].G), flat(runs[1].G), atol=1e-5)
    assert torch.allclose(flat(runs[0].D), flat(runs[1].D), atol=1e-5)


def test_precision_names_and_devices():
    assert precision.resolve("fp32", CPU) == "fp32" and precision.resolve("bf16", CPU) == "bf16"
    with pytest.raises(ValueError, match="needs a CUDA device"):
        precision.resolve("fp16", CPU)
    with pytest.raises(ValueError, match="choose one of fp32, bf16, fp16, auto"):
        precision.resolve("half", CPU)
    assert precision.grad_scaler("bf16", CPU) is None


def test_auto_picks_bf16_on_a_cpu_only_when_measured_faster_and_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLIB_CACHE", str(tmp_path))
    monkeypatch.setattr(precision, "_MEASURED", {})
    timings = {"calls": 0}

    def fake_step_seconds(dtype, repeats=3):  # no timing in unit tests: the measurement is stubbed
        timings["calls"] += 1
        return timings[dtype]

    monkeypatch.setattr(precision, "_step_seconds", fake_step_seconds)
    timings.update({None: 0.010, torch.bfloat16: 0.200})  # emulated bf16: 20x slower
    assert precision.resolve("auto", CPU) == "fp32"
    assert timings["calls"] == 2
    table = json.loads((tmp_path / "precision.json").read_text())
    assert table[precision.machine_key()]["bf16_faster"] is False
    assert precision.resolve("auto", CPU) == "fp32" and timings["calls"] == 2  # cached in memory
    monkeypatch.setattr(precision, "_MEASURED", {})
    assert precision.resolve("auto", CPU) == "fp32" and timings["calls"] == 2  # cached on disk
    timings.update({None: 0.010, torch.bfloat16: 0.004})  # native bf16
    assert precision.bf16_faster_on_cpu(refresh=True) and timings["calls"] == 4
    assert precision.resolve("auto", CPU) == "bf16"


def test_measuring_does_not_move_the_random_stream(tmp_path, monkeypatch):
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    precision._step_seconds(None, repeats=1)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.gpu
def test_fp16_with_grad_scaler_on_cuda_resumes_its_scale(tmp_path):
    from ganlib.models import stylegan
    cuda = torch.device("cuda")
    ganlib.seed_everything(0)
    G, D, source, extra = family("stylegan")
    trainer = Trainer(G, D, source, precision="fp16", checkpoint_path=tmp_path / "c.pt",
                      **dict(bce(**extra), device=cuda))
    assert trainer.scalers["d"] is not None and trainer.scalers["g"] is not None
    trainer.fit(3)
    assert torch.isfinite(torch.tensor(trainer.history["g_loss"])).all()
    scale = trainer.scalers["g"].get_scale()
    G2, D2, source2, extra2 = family("stylegan")
    resumed = Trainer(G2, D2, source2, precision="fp16", **dict(bce(**extra2), device=cuda))
    resumed.resume(tmp_path / "c.pt")
    assert resumed.scalers["g"].get_scale() == scale
    resumed.fit(4)
    assert isinstance(stylegan.StyleGenerator, type)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["dcgan", "stylegan", "stylegan-demod"])
def test_bf16_and_channels_last_step_on_cuda(name):
    ganlib.seed_everything(0)
    G, D, source, extra = family(name)
    seen = conv_dtypes(G, D)
    trainer = Trainer(G, D, source, precision="bf16", channels_last=True,
                      **dict(bce(**extra), device=torch.device("cuda")))
    trainer.fit(2)
    assert torch.bfloat16 in seen
    assert torch.isfinite(torch.tensor(trainer.history["d_loss"])).all()
