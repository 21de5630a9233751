"""ganlib.exercises: every check accepts a right answer and rejects typical wrong ones, naming the mistake.

Each wrong answer below is a mistake learners make (a single ε for the whole batch, the minimax sign, AdaIN over
the batch, ...); the test asserts the check raises ExerciseError and that its message names that mistake.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlib import exercises as ex
from ganlib.exercises import EXERCISES, ExerciseError


# --- right answers ------------------------------------------------------------------------------------

def optimal_logit(x, mu_r, sigma_r, mu_g, sigma_g):
    log_p_r = -0.5 * ((x - mu_r) / sigma_r) ** 2 - math.log(sigma_r)
    return log_p_r - (-0.5 * ((x - mu_g) / sigma_g) ** 2 - math.log(sigma_g))


def nonsaturating_loss(logits):
    return F.softplus(-logits).mean()


def js_divergence(p, q):
    m = (p + q) / 2

    def kl(a, b):
        nz = a > 0
        return (a[nz] * torch.log(a[nz] / b[nz])).sum()
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def clip_weights_(critic, c):
    with torch.no_grad():
        for p in critic.parameters():
            p.clamp_(-c, c)


def critic_loss(real, fake):
    return fake.mean() - real.mean()


def exact_w1_1d(x, y):
    return (x.sort().values - y.sort().values).abs().mean()


def grad_norms(critic, x):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x).sum(), x)
    return g.flatten(1).norm(dim=1)


def gradient_penalty(critic, real, fake):
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), dtype=real.dtype)
    x_hat = (real + eps * (fake - real)).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


def lsgan_losses(real, fake, coding):
    a, b, c = coding
    return 0.5 * ((real - b) ** 2).mean() + 0.5 * ((fake - a) ** 2).mean(), 0.5 * ((fake - c) ** 2).mean()


def generator_gradients(s, c):
    return -torch.sigmoid(-s), s - c


def smoothed_d_loss(real, fake, smoothing=0.1):
    return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, 1 - smoothing))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def add_instance_noise(real, fake, sigma):
    return real + sigma * torch.randn_like(real), fake + sigma * torch.randn_like(fake)


def ema_update_(ema, model, decay):
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), model.parameters()):
            pe.mul_(decay).add_(p, alpha=1 - decay)


def dcgan_init(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def slerp(a, b, t):
    omega = torch.arccos((a @ b / (a.norm() * b.norm())).clamp(-1, 1))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def label_planes(y, n_classes, size):
    return F.one_hot(y, n_classes).float()[:, :, None, None].expand(-1, -1, size, size)


def projection_logit(features, psi_weight, psi_bias, class_vectors, y):
    return features @ psi_weight + psi_bias + (class_vectors[y] * features).sum(1)


def up_bilinear(x):
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def laplacian_level(image):
    coarse = F.avg_pool2d(image, 2)
    return image - up_bilinear(coarse), coarse


def rebuild(pyramid):
    image = pyramid[-1]
    for h in reversed(pyramid[:-1]):
        image = up_bilinear(image) + h
    return image


def fade_in(old, new, alpha):
    return (1 - alpha) * F.interpolate(old, scale_factor=2, mode="nearest") + alpha * new


def minibatch_stddev(x, group_size=4):
    n, c, h, w = x.shape
    g = min(group_size, n)
    y = x.reshape(g, n // g, c, h, w)
    std = ((y - y.mean(0)) ** 2).mean(0).add(1e-8).sqrt().mean(dim=(1, 2, 3)).repeat(g)
    return torch.cat([x, std.view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


def pixel_norm(x):
    return x / torch.sqrt(x.pow(2).mean(1, keepdim=True) + 1e-8)


def adain(x, y_s, y_b):
    mu, var = x.mean((2, 3), keepdim=True), x.var((2, 3), unbiased=False, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-8) * (y_s[:, :, None, None] + 1) + y_b[:, :, None, None]


def truncate_styles(ws, w_avg, psi, cutoff=None):
    k = ws.shape[1] if cutoff is None else cutoff
    out = ws.clone()
    out[:, :k] = w_avg + psi * (ws[:, :k] - w_avg)
    return out


def mix_styles(w1, w2, n_layers, crossover):
    take_w2 = torch.arange(n_layers) >= crossover
    return torch.where(take_w2[None, :, None], w2[:, None, :], w1[:, None, :])


RIGHT = {
    "check_optimal_logit": optimal_logit, "check_nonsaturating_loss": nonsaturating_loss,
    "check_js_divergence": js_divergence, "check_clip_weights": clip_weights_, "check_critic_loss": critic_loss,
    "check_exact_w1_1d": exact_w1_1d, "check_grad_norms": grad_norms, "check_gradient_penalty": gradient_penalty,
    "check_lsgan_losses": lsgan_losses, "check_generator_gradients": generator_gradients,
    "check_smoothed_d_loss": smoothed_d_loss, "check_instance_noise": add_instance_noise,
    "check_ema_update": ema_update_, "check_dcgan_init": dcgan_init, "check_slerp": slerp,
    "check_label_planes": label_planes, "check_projection_logit": projection_logit,
    "check_laplacian_level": laplacian_level, "check_rebuild": rebuild, "check_fade_in": fade_in,
    "check_minibatch_stddev": minibatch_stddev, "check_pixel_norm": pixel_norm, "check_adain": adain,
    "check_truncate_styles": truncate_styles, "check_mix_styles": mix_styles,
}


# --- typical wrong answers ----------------------------------------------------------------------------

def _gp(eps_shape, at="interpolates", create_graph=True, reduce="sum"):
    def penalty(critic, real, fake):
        eps = torch.rand(eps_shape(real), dtype=real.dtype)
        x = real if at == "real" else real + eps * (fake - real)
        x = x.detach().requires_grad_(True)
        out = critic(x)
        (g,) = torch.autograd.grad(out.sum() if reduce == "sum" else out.mean(), x, create_graph=create_graph)
        return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return penalty


def _one_per_sample(real):
    return (real.shape[0],) + (1,) * (real.dim() - 1)


def _clip_rebind(critic, c):
    for p in critic.parameters():
        p = p.clamp(-c, c)  # noqa: F841  rebinds the loop variable only


def _clip_weights_only(critic, c):
    with torch.no_grad():
        for name, p in critic.named_parameters():
            if "weight" in name:
                p.clamp_(-c, c)


def _clip_replace(critic, c):
    for m in critic.modules():
        if isinstance(m, nn.Linear):
            m.weight = nn.Parameter(m.weight.detach().clamp(-c, c))
            m.bias = nn.Parameter(m.bias.detach().clamp(-c, c))


def _clip_sign(critic, c):
    with torch.no_grad():
        for p in critic.parameters():
            p.copy_(torch.sign(p) * c)


def _ema_swapped(ema, model, decay):
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), model.parameters()):
            pe.mul_(1 - decay).add_(p, alpha=decay)


def _ema_rebind(ema, model, decay):
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe = decay * pe + (1 - decay) * p  # noqa: F841


def _ema_moves_model(ema, model, decay):
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), model.parameters()):
            p.mul_(decay).add_(pe, alpha=1 - decay)


def _init(conv_types=(nn.Conv2d, nn.ConvTranspose2d), gamma_mean=1.0, std=0.02, modules="modules"):
    def init(module):
        for m in getattr(module, modules)():
            if isinstance(m, conv_types):
                nn.init.normal_(m.weight, 0.0, std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, gamma_mean, 0.02)
                nn.init.zeros_(m.bias)
    return init


def _slerp_no_fallback(a, b, t):
    omega = torch.arccos(a @ b / (a.norm() * b.norm()))
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def _level(down, up, sign=1.0):
    def level(image):
        coarse = down(image)
        return sign * (image - up(coarse)), coarse
    return level


def _rebuild_with(up, use_residuals=True, finest_first=False):
    def rebuild_(pyramid):
        image = pyramid[-1]
        levels = pyramid[:-1] if finest_first else list(reversed(pyramid[:-1]))
        for h in levels:
            image = up(image) + (h if use_residuals else 0)
        return image
    return rebuild_


def _mbstd(grouping="official", unbiased=False, whole=False):
    def layer(x, group_size=4):
        n, c, h, w = x.shape
        g = min(group_size, n)
        if whole:
            std = x.std(0, unbiased=unbiased).mean().expand(n)
        elif grouping == "consecutive":
            y = x.reshape(n // g, g, c, h, w)
            std = y.std(1, unbiased=unbiased).mean(dim=(1, 2, 3)).repeat_interleave(g)
        else:
            y = x.reshape(g, n // g, c, h, w)
            std = y.std(0, unbiased=unbiased).mean(dim=(1, 2, 3)).repeat(g)
        return torch.cat([x, std.view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)
    return layer


def _adain(dims=(2, 3), plus_one=True, unbiased=False):
    def f(x, y_s, y_b):
        mu, var = x.mean(dims, keepdim=True), x.var(dims, unbiased=unbiased, keepdim=True)
        scale = y_s[:, :, None, None] + (1 if plus_one else 0)
        return (x - mu) / torch.sqrt(var + 1e-8) * scale + y_b[:, :, None, None]
    return f


def _truncate(kind):
    def f(ws, w_avg, psi, cutoff=None):
        k = ws.shape[1] if cutoff is None else cutoff
        out = ws.clone()
        if kind == "towards_zero":
            out[:, :k] = psi * ws[:, :k]
        elif kind == "swapped_psi":
            out[:, :k] = ws[:, :k] + psi * (w_avg - ws[:, :k])
        elif kind == "fine_layers":
            if cutoff is None:
                out = w_avg + psi * (ws - w_avg)
            else:
                out[:, k:] = w_avg + psi * (ws[:, k:] - w_avg)
        return out
    return f


def _mix(cond):
    def f(w1, w2, n_layers, crossover):
        take_w2 = cond(torch.arange(n_layers), crossover)
        return torch.where(take_w2[None, :, None], w2[:, None, :], w1[:, None, :])
    return f


def _sm(real_target, fake_target, reduce="mean"):
    def f(real, fake, smoothing=0.1):
        rt, ft = real_target(smoothing), fake_target(smoothing)
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, rt), reduction=reduce)
                + F.binary_cross_entropy_with_logits(fake, torch.full_like(fake, ft), reduction=reduce))
    return f


def _noise_inplace(real, fake, sigma):
    real += sigma * torch.randn_like(real)
    return real, fake + sigma * torch.randn_like(fake)


def _same_noise(real, fake, sigma):
    noise = sigma * torch.randn_like(real)
    return real + noise, fake + noise


WRONG = [
    # 1.1
    ("check_optimal_logit", lambda x, mr, sr, mg, sg: torch.sigmoid(optimal_logit(x, mr, sr, mg, sg)), "probability"),
    ("check_optimal_logit", lambda x, mr, sr, mg, sg: torch.log(
        torch.exp(-0.5 * ((x - mr) / sr) ** 2) / sr / (torch.exp(-0.5 * ((x - mg) / sg) ** 2) / sg)), "underflow"),
    ("check_optimal_logit", lambda x, mr, sr, mg, sg: -0.5 * ((x - mr) / sr) ** 2 + 0.5 * ((x - mg) / sg) ** 2,
     "normalising"),
    ("check_optimal_logit", lambda x, mr, sr, mg, sg: -optimal_logit(x, mr, sr, mg, sg), "sign is flipped"),
    # 1.2
    ("check_nonsaturating_loss", lambda l: -F.softplus(l).mean(), "minimax"),
    ("check_nonsaturating_loss", lambda l: -torch.log(torch.sigmoid(l)).mean(), "underflows"),
    ("check_nonsaturating_loss", lambda l: F.softplus(-l).sum(), "average over the batch"),
    ("check_nonsaturating_loss", lambda l: -F.softplus(-l).mean(), "sign is flipped"),
    # 1.3
    ("check_js_divergence", lambda p, q: js_divergence(p, q) / math.log(2), "log base 2"),
    ("check_js_divergence", lambda p, q: 2 * js_divergence(p, q), "dropped the ½"),
    ("check_js_divergence", lambda p, q: (p * torch.log(p / q)).sum(), "KL(p‖q) directly"),
    ("check_js_divergence", lambda p, q: 0.5 * (p * torch.log(2 * p / (p + q))).sum()
     + 0.5 * (q * torch.log(2 * q / (p + q))).sum(), "0·log 0"),
    # 2.1
    ("check_clip_weights", _clip_rebind, "rebinds the loop variable"),
    ("check_clip_weights", _clip_weights_only, "biases included"),
    ("check_clip_weights", _clip_replace, "replaced the critic's parameters"),
    ("check_clip_weights", _clip_sign, "already inside"),
    # 2.2
    ("check_critic_loss", lambda r, f: r.mean() - f.mean(), "sign is flipped"),
    ("check_critic_loss", lambda r, f: (r.mean() - f.mean()).abs(), "never negative"),
    ("check_critic_loss", lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(), "BCE"),
    ("check_critic_loss", lambda r, f: f.sum() - r.sum(), "don't sum"),
    # 2.3
    ("check_exact_w1_1d", lambda x, y: (x - y).abs().mean(), "paired the samples by position"),
    ("check_exact_w1_1d", lambda x, y: (x.mean() - y.mean()).abs(), "lower bound"),
    ("check_exact_w1_1d", lambda x, y: ((x.sort().values - y.sort().values) ** 2).mean(), "W2²"),
    # 3.1
    ("check_grad_norms", lambda critic, x: grad_norms(lambda v: critic(v).mean(), x), "times too small"),
    ("check_grad_norms", lambda critic, x: grad_norms(critic, x).norm(), "one number for the whole batch"),
    ("check_grad_norms", lambda critic, x: grad_norms(critic, x) ** 2, "squared norms"),
    # 3.2
    ("check_gradient_penalty", _gp(lambda r: (1,) * r.dim()), "one ε for the whole batch"),
    ("check_gradient_penalty", _gp(lambda r: r.shape), "one ε per pixel"),
    ("check_gradient_penalty", _gp(_one_per_sample, at="real"), "at the real samples"),
    ("check_gradient_penalty", _gp(_one_per_sample, create_graph=False), "create_graph=True"),
    ("check_gradient_penalty", _gp(_one_per_sample, reduce="mean"), "times too small"),
    # 4.1
    ("check_lsgan_losses", lambda r, f, co: lsgan_losses(r, f, (co[1], co[0], co[2])), "a is the target for fakes"),
    ("check_lsgan_losses", lambda r, f, co: (lsgan_losses(r, f, co)[0], 0.5 * ((f - co[1]) ** 2).mean()),
     "aims the fakes at b"),
    ("check_lsgan_losses", lambda r, f, co: tuple(2 * v for v in lsgan_losses(r, f, co)), "carry a ½"),
    # 4.2
    ("check_generator_gradients", lambda s, c: (-torch.sigmoid(s), s - c), "minimax"),
    ("check_generator_gradients", lambda s, c: (-torch.sigmoid(-s), 2 * (s - c)), "twice too large"),
    ("check_generator_gradients", lambda s, c: (-torch.sigmoid(-s) / len(s), (s - c) / len(s)), "times too small"),
    ("check_generator_gradients", lambda s, c: (torch.sigmoid(-s), s - c), "wrong sign"),
    # 5.1
    ("check_smoothed_d_loss", _sm(lambda s: 1 - s, lambda s: s), "smoothed the fake labels too"),
    ("check_smoothed_d_loss", _sm(lambda s: s, lambda s: 0.0), "the smoothing amount itself"),
    ("check_smoothed_d_loss", _sm(lambda s: 1.0, lambda s: 0.0), "no smoothing"),
    ("check_smoothed_d_loss", _sm(lambda s: 1 - s, lambda s: 0.0, reduce="sum"), "sums over the samples"),
    # 5.2
    ("check_instance_noise", _same_noise, "same noise"),
    ("check_instance_noise", lambda r, f, s: (r + math.sqrt(s) * torch.randn_like(r),
                                              f + math.sqrt(s) * torch.randn_like(f)), "not a variance"),
    ("check_instance_noise", _noise_inplace, "in place"),
    ("check_instance_noise", lambda r, f, s: (r + s * torch.rand_like(r), f + s * torch.rand_like(f)), "zero-mean"),
    ("check_instance_noise", lambda r, f, s: (r + s * torch.randn(r.shape[0], 1, dtype=r.dtype),
                                              f + s * torch.randn(f.shape[0], 1, dtype=f.dtype)), "every element"),
    # 5.3
    ("check_ema_update", _ema_swapped, "most of its past"),
    ("check_ema_update", _ema_rebind, "nothing changed"),
    ("check_ema_update", _ema_moves_model, "training model"),
    # 6.1
    ("check_dcgan_init", _init(conv_types=(nn.Conv2d,)), "nn.ConvTranspose2d"),
    ("check_dcgan_init", _init(gamma_mean=0.0), "N(1, 0.02)"),
    ("check_dcgan_init", _init(std=math.sqrt(0.02)), "not a variance"),
    ("check_dcgan_init", _init(modules="children"), "module.modules()"),
    # 6.2
    ("check_slerp", lambda a, b, t: (1 - t) * a + t * b, "straight"),
    ("check_slerp", lambda a, b, t: slerp(b, a, t), "swapped"),
    ("check_slerp", _slerp_no_fallback, "parallel"),
    ("check_slerp", lambda a, b, t: slerp(a, b, t) / slerp(a, b, t).norm(), "normalised"),
    # 7.1
    ("check_label_planes", lambda y, k, s: F.one_hot(y, k).float()[:, None, None, :].expand(-1, s, s, -1),
     "channels-last"),
    ("check_label_planes", lambda y, k, s: F.one_hot(y, k)[:, :, None, None].expand(-1, -1, s, s), "return floats"),
    ("check_label_planes", lambda y, k, s: F.one_hot(y, k).float()[:, :, None, None], "1×1"),
    ("check_label_planes", lambda y, k, s: F.one_hot(y, 10).float()[:, :, None, None].expand(-1, -1, s, s),
     "n_classes"),
    # 7.2
    ("check_projection_logit", lambda f, w, b, v, y: f @ w + b, "left out the class term"),
    ("check_projection_logit", lambda f, w, b, v, y: (f @ w + b)[:, None] + f @ v.T, "every class"),
    ("check_projection_logit", lambda f, w, b, v, y: (v[y] * f).sum(1), "unconditional term"),
    ("check_projection_logit", lambda f, w, b, v, y: f @ w + b + f @ v.sum(0), "summed the inner products"),
    # 8.1
    ("check_laplacian_level", _level(lambda x: x[..., ::2, ::2], up_bilinear), "every other pixel"),
    ("check_laplacian_level", _level(lambda x: F.avg_pool2d(x, 2), lambda x: F.interpolate(x, scale_factor=2)),
     "nearest neighbour"),
    ("check_laplacian_level", _level(lambda x: F.avg_pool2d(x, 2), up_bilinear, sign=-1.0), "wrong sign"),
    ("check_laplacian_level", lambda x: laplacian_level(x)[::-1], "the order is (residual, coarse)"),
    # 8.2
    ("check_rebuild", _rebuild_with(up_bilinear, finest_first=True), "finest first"),
    ("check_rebuild", _rebuild_with(lambda x: F.interpolate(x, scale_factor=2)), "nearest neighbour"),
    ("check_rebuild", _rebuild_with(up_bilinear, use_residuals=False), "only up-sampled the coarsest"),
    # 9.1
    ("check_fade_in", lambda o, n, a: fade_in(o, n, 1 - a), "reversed"),
    ("check_fade_in", lambda o, n, a: (1 - a) * up_bilinear(o) + a * n, "bilinearly"),
    ("check_fade_in", lambda o, n, a: (1 - a) * o + a * n, "up-sample it 2× first"),
    # 9.2
    ("check_minibatch_stddev", _mbstd(grouping="consecutive"), "consecutive samples"),
    ("check_minibatch_stddev", _mbstd(unbiased=True), "unbiased"),
    ("check_minibatch_stddev", _mbstd(whole=True), "whole batch"),
    # 9.3
    ("check_pixel_norm", lambda x: x / x.norm(dim=1, keepdim=True), "L2 norm"),
    ("check_pixel_norm", lambda x: x / x.pow(2).mean((2, 3), keepdim=True).sqrt(), "spatial positions"),
    ("check_pixel_norm", lambda x: x / x.pow(2).mean(1, keepdim=True).sqrt(), "ε = 1e-8"),
    ("check_pixel_norm", lambda x: x / x.pow(2).mean((1, 2, 3), keepdim=True).sqrt(), "whole sample"),
    # 10.1
    ("check_adain", _adain(dims=(0, 2, 3)), "over the batch"),
    ("check_adain", _adain(plus_one=False), "y_s + 1"),
    ("check_adain", _adain(dims=(1, 2, 3)), "channels too"),
    ("check_adain", _adain(unbiased=True), "unbiased"),
    # 10.2
    ("check_truncate_styles", _truncate("towards_zero"), "towards 0"),
    ("check_truncate_styles", _truncate("swapped_psi"), "kept"),
    ("check_truncate_styles", _truncate("fine_layers"), "coarse layers"),
    # 10.3
    ("check_mix_styles", _mix(lambda layer, c: layer < c), "swapped"),
    ("check_mix_styles", _mix(lambda layer, c: layer > c), "off by one"),
    ("check_mix_styles", lambda w1, w2, n, c: mix_styles(w1, w2, n, c).transpose(0, 1), "layers first"),
]


def test_every_exercise_is_registered_once_with_a_check_of_its_name():
    assert 22 <= len(EXERCISES) <= 26
    assert {e.chapter for e in EXERCISES.values()} == set(range(1, 11))
    for chapter in range(1, 11):
        assert 2 <= sum(e.chapter == chapter for e in EXERCISES.values()) <= 3
    for ex_id, e in EXERCISES.items():
        assert e.id == ex_id and getattr(ex, e.check_name) is e.check and e.check_name in ex.__all__
        assert e.check.__doc__ and e.check.__doc__.strip()
    assert set(RIGHT) == {e.check_name for e in EXERCISES.values()}


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_a_right_answer_passes_and_says_so(name, capsys):
    assert getattr(ex, name)(RIGHT[name]) is True
    out = capsys.readouterr().out
    assert out.startswith("✓ exercise ")


@pytest.mark.parametrize("name, wrong, says", WRONG, ids=[f"{n}-{s}" for n, _, s in WRONG])
def test_a_typical_wrong_answer_fails_naming_the_mistake(name, wrong, says):
    with pytest.raises(ExerciseError) as info:
        getattr(ex, name)(wrong)
    message = str(info.value)
    exercise = next(e for e in EXERCISES.values() if e.check_name == name)
    assert message.startswith(f"exercise {exercise.id} ("), message
    assert says in message, message


def test_every_check_is_tested_on_at_least_two_wrong_answers():
    counts = {name: sum(n == name for n, _, _ in WRONG) for name in RIGHT}
    assert min(counts.values()) >= 2, counts


def test_exercise_error_is_an_assertion_error():
    assert issubclass(ExerciseError, AssertionError)


def test_a_stub_s_not_implemented_error_passes_through_unchanged():
    def stub(*args):
        raise NotImplementedError("exercise 3.2: the gradient penalty with one ε per sample")
    for e in EXERCISES.values():
        with pytest.raises(NotImplementedError, match="exercise 3.2: the gradient penalty"):
            e.check(stub)


def test_a_crash_is_explained_with_the_call_and_a_hint():
    def crashes(critic, real, fake):
        x = real + 0.5 * (fake - real)
        (g,) = torch.autograd.grad(critic(x).sum(), x)  # x does not require grad
        return g.norm()
    with pytest.raises(ExerciseError, match=r"raised RuntimeError.*called as gradient_penalty\(a critic, a tensor "
                                            r"of shape \(8, 1, 2, 2\).*requires_grad_"):
        ex.check_gradient_penalty(crashes)


def test_passing_the_result_instead_of_the_function_is_explained():
    with pytest.raises(ExerciseError, match="pass your function itself"):
        ex.check_critic_loss(torch.tensor(1.0))


def test_checks_leave_the_global_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ex.check_gradient_penalty(gradient_penalty)
    ex.check_instance_noise(add_instance_noise)
    assert torch.equal(torch.rand(3), expected)
