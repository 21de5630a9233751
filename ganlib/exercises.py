"""Exercises for chapters 01-10 that check themselves.

Every chapter notebook ends with an "Exercises" section: a task, a cell (tagged ``solution``) where the
learner writes one function, and a check cell that calls ``check_<name>(that_function)``. A check

* tests the function against **independent mathematics** -- closed forms, finite differences, values worked
  out by hand, critics whose gradient is known (a linear critic has gradient w everywhere) -- and never
  against ``ganlib``'s own implementation of the same thing;
* on success prints one line starting with "✓" and returns ``True``;
* on a wrong answer raises :class:`ExerciseError` (an ``AssertionError``) whose message names the exercise
  and the likely mistake in words ("your penalty uses one ε for the whole batch: ...");
* lets a stub's ``NotImplementedError`` through unchanged, so the student version of a notebook
  (``make student``) stops at the first exercise still to do with that exercise's own message.

Checks run on the CPU with small tensors (milliseconds) and draw their random numbers inside
``torch.random.fork_rng``, so running one never changes the notebook's random stream.

``EXERCISES`` lists every exercise by its stable id ("3.2"): chapter, title, the name the notebook gives the
learner's function and the check.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "EXERCISES", "Exercise", "ExerciseError",
    "check_optimal_logit", "check_nonsaturating_loss", "check_js_divergence",
    "check_clip_weights", "check_critic_loss", "check_exact_w1_1d",
    "check_grad_norms", "check_gradient_penalty",
    "check_lsgan_losses", "check_generator_gradients",
    "check_smoothed_d_loss", "check_instance_noise", "check_ema_update",
    "check_dcgan_init", "check_slerp",
    "check_label_planes", "check_projection_logit",
    "check_laplacian_level", "check_rebuild",
    "check_fade_in", "check_minibatch_stddev", "check_pixel_norm",
    "check_adain", "check_truncate_styles", "check_mix_styles",
]

F64 = torch.float64


class ExerciseError(AssertionError):
    """A learner's answer to an exercise is wrong; the message says which exercise and, in words, how."""


@dataclass(frozen=True)
class Exercise:
    """One exercise: its stable id ("3.2"), chapter, one-line title, the learner's function name and its check."""

    id: str
    chapter: int
    title: str
    function: str
    check: Callable[[Callable[..., Any]], bool]

    @property
    def check_name(self) -> str:
        return self.check.__name__


EXERCISES: Dict[str, Exercise] = {}


class _Checker:
    """What a check body uses to call the learner's function and to explain a wrong answer."""

    def __init__(self, ex_id: str, title: str, function: str) -> None:
        self.id, self.title, self.function = ex_id, title, function

    def fail(self, message: str) -> None:
        raise ExerciseError(f"exercise {self.id} ({self.title}): {message}")

    def call(self, fn: Callable[..., Any], *args: Any, hint: str = "", **kwargs: Any) -> Any:
        """Call the learner's function; a stub's NotImplementedError passes through, any other crash is explained."""
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            raise
        except ExerciseError:
            raise
        except Exception as e:  # the learner's code crashed: say where and with what
            text = str(e)
            extra = hint
            if "does not require grad" in text:
                extra = ("torch.autograd.grad needs an input that requires grad: x = x.detach().requires_grad_(True) "
                         "before calling the critic") + (f"; {hint}" if hint else "")
            elif "leaf Variable that requires grad" in text:
                extra = ("parameters cannot be changed in place while autograd is recording: wrap the loop in "
                         "`with torch.no_grad():`") + (f"; {hint}" if hint else "")
            args_text = ", ".join(_describe(a) for a in args)
            raise ExerciseError(f"exercise {self.id} ({self.title}): your function raised {type(e).__name__}: "
                                f"{text} (called as {self.function}({args_text}))"
                                + (f". Hint: {extra}" if extra else "")) from e

    def tensor(self, out: Any, what: str, shape: Optional[Sequence[int]] = None, finite: bool = True,
               shape_hint: str = "") -> Tensor:
        if not isinstance(out, Tensor):
            self.fail(f"{what} should be a torch tensor, got {type(out).__name__}")
        if shape is not None and tuple(out.shape) != tuple(shape):
            self.fail(f"{what} should have shape {tuple(shape)}, got {tuple(out.shape)}"
                      + (f": {shape_hint}" if shape_hint else ""))
        if finite and not bool(torch.isfinite(out.detach()).all()):
            self.fail(f"{what} contains inf or nan: {_fmt(out)}")
        return out

    def scalar(self, out: Any, what: str, needs_grad: bool = False) -> Tensor:
        """One number, as a tensor (keeping its graph); plain floats pass when no gradient is needed."""
        if isinstance(out, (int, float)) and not isinstance(out, bool) and not needs_grad:
            return torch.tensor(_f(out), dtype=F64)
        if not isinstance(out, Tensor):
            self.fail(f"{what} should be one number (a 0-d tensor), got {type(out).__name__}")
        if out.numel() != 1:
            self.fail(f"{what} should be one number, got a tensor of shape {tuple(out.shape)}: average over the "
                      "batch (.mean()) to get a single loss")
        if needs_grad and out.grad_fn is None:
            self.fail(f"{what} has no gradient: keep it a torch expression of the inputs (no .item(), numpy, "
                      "math.* or float() on tensors), so that backward() can reach them")
        return out.reshape(())


def _describe(a: Any) -> str:
    if isinstance(a, Tensor):
        return f"a tensor of shape {tuple(a.shape)}"
    if isinstance(a, nn.Module):
        return f"a {type(a).__name__}"
    if isinstance(a, (list, tuple)):
        return f"a {type(a).__name__} of {len(a)}"
    if callable(a):
        return "a critic"
    return repr(a)


def _fmt(t: Any, n: int = 6) -> str:
    """A short, readable rendering of a tensor's first values."""
    if not isinstance(t, Tensor):
        return repr(t)
    flat = t.detach().double().flatten()
    values = ", ".join(f"{v:.4g}" for v in flat[:n].tolist())
    return f"[{values}{', ...' if flat.numel() > n else ''}]"


def _close(a: Any, b: Any, atol: float = 1e-6, rtol: float = 1e-5) -> bool:
    a = torch.as_tensor(a.detach() if isinstance(a, Tensor) else a, dtype=F64)
    b = torch.as_tensor(b.detach() if isinstance(b, Tensor) else b, dtype=F64)
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=rtol))


def _f(t: Any) -> float:
    """A number out of a 0-d tensor (detached) or a float."""
    return float(t.detach()) if isinstance(t, Tensor) else float(t)


def _near(a: float, b: float, tol: float = 1e-6) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def _softplus(v: float) -> float:
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


def _exercise(ex_id: str, title: str, function: str) -> Callable[[Callable[[_Checker, Callable[..., Any]], str]],
                                                                 Callable[[Callable[..., Any]], bool]]:
    """Register a check body ``body(checker, fn) -> success text`` as ``check_<name>(fn) -> True``."""

    def register(body: Callable[[_Checker, Callable[..., Any]], str]) -> Callable[[Callable[..., Any]], bool]:
        def check(fn: Callable[..., Any]) -> bool:
            checker = _Checker(ex_id, title, function)
            if not callable(fn):
                checker.fail(f"pass your function itself, e.g. {body.__name__}({function}), not the result of calling "
                             f"it (got a {type(fn).__name__})")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(20240616)
                success = body(checker, fn)
            print(f"✓ exercise {ex_id} ({title}): {success}")
            return True

        check.__name__ = check.__qualname__ = body.__name__
        check.__doc__ = body.__doc__
        check.__module__ = body.__module__
        EXERCISES[ex_id] = Exercise(ex_id, int(ex_id.split(".")[0]), title, function, check)
        return check

    return register


# --- chapter 01: the vanilla GAN ---------------------------------------------------------------------

@_exercise("1.1", "the optimal discriminator's logit for two Gaussians", "optimal_logit")
def check_optimal_logit(c: _Checker, fn: Callable[..., Tensor]) -> str:
    """Check ``optimal_logit(x, mu_r, sigma_r, mu_g, sigma_g)`` = log p_r(x) - log p_g(x) for two Gaussians.

    Against the closed form log(σ_g/σ_r) - (x-μ_r)²/(2σ_r²) + (x-μ_g)²/(2σ_g²), in the middle and 130 σ out in
    the tails, where the densities themselves underflow to 0 and only a log-space computation stays finite.
    """
    def closed_form(v: float, mr: float, sr: float, mg: float, sg: float) -> float:
        return math.log(sg / sr) - (v - mr) ** 2 / (2 * sr ** 2) + (v - mg) ** 2 / (2 * sg ** 2)

    mr, sr, mg, sg = 1.0, 0.7, -1.0, 1.0  # the chapter's section 1
    xs = [-3.0 + 0.25 * i for i in range(27)]
    x = torch.tensor(xs, dtype=F64)
    expected = torch.tensor([closed_form(v, mr, sr, mg, sg) for v in xs], dtype=F64)
    out = c.tensor(c.call(fn, x, mr, sr, mg, sg), "your logit", shape=x.shape).detach().double()
    if not _close(out, expected, atol=1e-6):
        if _close(out, torch.sigmoid(expected), atol=1e-4):
            c.fail("you returned D*(x) itself, a probability between 0 and 1. The exercise asks for its logit, "
                   "log p_r(x) − log p_g(x) (D*(x) = sigmoid(logit)); the logit is 0 where the two densities are equal "
                   "and grows without bound where p_r dominates")
        if _close(out, -expected, atol=1e-6):
            c.fail("the sign is flipped: you computed log p_g − log p_r. D* says 'real', so its logit is positive "
                   "where the real density p_r is the larger one")
        const = math.log(sg / sr)
        diff = out - expected
        if any(_close(diff, torch.full_like(diff, sign * const), atol=1e-5) for sign in (-1.0, 1.0)):
            c.fail(f"your logit is off by the constant log(σ_g/σ_r) = {const:.4f} everywhere: the Gaussian density has "
                   "a normalising factor 1/(σ√(2π)), and with σ_r = 0.7 ≠ σ_g = 1 the two factors do not cancel "
                   "(only the √(2π) does)")
        i = int((out - expected).abs().argmax())
        c.fail(f"at x = {xs[i]:g} your logit is {out[i]:.4f}, but log p_r(x) − log p_g(x) = {expected[i]:.4f} "
               f"(p_r = N(1, 0.7²), p_g = N(−1, 1²))")
    far = [-40.0, 0.0, 40.0]
    x_far = torch.tensor(far, dtype=F64)
    out_far = c.tensor(c.call(fn, x_far, 0.0, 0.3, 4.0, 0.3), "your logit", shape=x_far.shape, finite=False)
    out_far = out_far.detach().double()
    if not bool(torch.isfinite(out_far).all()):
        c.fail(f"for p_r = N(0, 0.3²), p_g = N(4, 0.3²) your logit at x = −40, 0, 40 is {_fmt(out_far)}: far in the "
               "tails both densities underflow to 0 in floating point (e^(−8889)), so p_r/p_g is 0/0. Work with the "
               "log-densities directly, −(x − μ)²/(2σ²) − log σ: no exp is needed")
    expected_far = torch.tensor([closed_form(v, 0.0, 0.3, 4.0, 0.3) for v in far], dtype=F64)
    if not _close(out_far, expected_far, atol=1e-6, rtol=1e-9):
        c.fail(f"for p_r = N(0, 0.3²), p_g = N(4, 0.3²) at x = −40, 0, 40 your logit is {_fmt(out_far)}, expected "
               f"{_fmt(expected_far)}")
    return "equals log p_r − log p_g, and stays finite 130 σ out in the tails"


@_exercise("1.2", "the non-saturating generator loss from logits", "nonsaturating_loss")
def check_nonsaturating_loss(c: _Checker, fn: Callable[[Tensor], Tensor]) -> str:
    """Check ``nonsaturating_loss(fake_logits)`` = -mean log σ(logit) = mean softplus(-logit).

    Hand-computable values (logit 0 gives log 2), its gradient -σ(-logit)/N against the closed form, and
    stability at logits ±200, where log(sigmoid(·)) underflows.
    """
    values = [-2.0, 0.0, 1.5, 4.0]
    n = len(values)
    logits = torch.tensor(values, dtype=F64, requires_grad=True)
    expected = sum(_softplus(-v) for v in values) / n
    out = c.scalar(c.call(fn, logits), "your loss")
    v = _f(out)
    if not _near(v, expected):
        minimax = -sum(_softplus(v_) for v_ in values) / n
        if _near(v, minimax):
            c.fail("that is the minimax loss E[log(1 − D(G(z)))], which goes flat (saturates) exactly when D rejects "
                   "the fakes; the non-saturating loss is −E[log D(G(z))] = mean softplus(−logit)")
        if _near(v, -expected):
            c.fail("the sign is flipped: you return E[log D(G(z))]. Minimising that would teach G to be rejected; the "
                   "loss G minimises is −E[log D(G(z))]")
        if _near(v, -minimax):
            c.fail("you return −E[log(1 − D(G(z)))] = mean softplus(logit): that is the discriminator's loss on fakes. "
                   "G minimises −log D(G(z)) = softplus(−logit)")
        if _near(v, n * expected):
            c.fail(f"your loss is {n}× too large for {n} samples: average over the batch (.mean()), don't sum")
        c.fail(f"for logits {values} the loss should be mean(−log σ(logit)) = {expected:.5f}, got {v:.5f} "
               "(a check by hand: at logit 0, D = ½ and −log ½ = log 2 = 0.6931)")
    if out.grad_fn is None:
        c.scalar(out, "your loss", needs_grad=True)
    (grad,) = torch.autograd.grad(out, logits, allow_unused=True)
    expected_grad = torch.tensor([-_sigmoid(-v_) / n for v_ in values], dtype=F64)
    if grad is None or not _close(grad, expected_grad):
        c.fail("the value is right but the gradient is not: ∂loss/∂logit should be −σ(−logit)/N = "
               f"{_fmt(expected_grad)}, "
               f"got {_fmt(grad) if grad is not None else 'none'}")
    far = torch.tensor([-200.0, 200.0])
    out_far = c.scalar(c.call(fn, far), "your loss")
    if not math.isfinite(_f(out_far)):
        c.fail("your loss is inf for a fake with logit −200 (D is sure it is fake): log(sigmoid(−200)) underflows to "
               "log(0). Compute it from the logit: F.softplus(−logit) = log(1 + e^(−logit)), or −F.logsigmoid(logit)")
    if not _near(_f(out_far), 100.0, 1e-4):
        c.fail(f"for logits −200 and 200 the loss should be (200 + 0)/2 = 100, got {_f(out_far):.4g}")
    return "value, gradient −σ(−logit)/N, and finite at logits ±200"


@_exercise("1.3", "the Jensen-Shannon divergence between two discrete distributions", "js_divergence")
def check_js_divergence(c: _Checker, fn: Callable[[Tensor, Tensor], Tensor]) -> str:
    """Check ``js_divergence(p, q)`` (natural log) on identical (0), disjoint (log 2) and hand-computed cases.

    JS([½, ½], [1, 0]) = ½(½ log(½/¾) + ½ log(½/¼)) + ½ log(1/¾) = 0.215762; symmetry JS(p, q) = JS(q, p).
    """
    def reference(p: List[float], q: List[float]) -> float:
        m = [(a + b) / 2 for a, b in zip(p, q)]
        kl = lambda a, b: sum(ai * math.log(ai / bi) for ai, bi in zip(a, b) if ai > 0)  # noqa: E731
        return 0.5 * kl(p, m) + 0.5 * kl(q, m)

    def run(p: List[float], q: List[float]) -> float:
        out = c.scalar(c.call(fn, torch.tensor(p, dtype=F64), torch.tensor(q, dtype=F64)), "your divergence")
        return _f(out)

    same = [0.2, 0.3, 0.5]
    v = run(same, same)
    if not abs(v) < 1e-9:
        c.fail(f"JS(p, p) must be 0 (identical distributions), got {v:.4g} for p = {same}")
    gen = torch.Generator().manual_seed(3)
    a, b = torch.rand(6, generator=gen, dtype=F64) + 0.05, torch.rand(6, generator=gen, dtype=F64) + 0.05
    a, b = (a / a.sum()).tolist(), (b / b.sum()).tolist()
    v, v_rev = run(a, b), run(b, a)
    if not _near(v, v_rev, 1e-9):
        c.fail(f"JS is symmetric, but yours gives JS(p, q) = {v:.5f} and JS(q, p) = {v_rev:.5f}: it looks like you "
               "computed KL(p‖q) directly, or only one of the two halves. JS = ½ KL(p‖m) + ½ KL(q‖m), m = (p + q)/2")
    p, q = [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.25, 0.75]
    v = run(p, q)
    log2 = math.log(2)
    if math.isnan(v):
        c.fail(f"nan for two distributions with disjoint supports (p = {p}, q = {q}): a term with p_i = 0 is "
               "0·log 0, which counts as 0 — but in floating point 0 * log(0) = 0 * (−inf) = nan. Sum only over "
               "the entries where the first argument is positive")
    if math.isinf(v):
        c.fail("inf for two distributions with disjoint supports: you took KL(p‖q) directly, which is infinite "
               "where q = 0 and p > 0. JS compares each of p and q with their mixture m = (p + q)/2, which is "
               "positive wherever either is")
    if _near(v, 1.0):
        c.fail("disjoint supports gave 1: that is log base 2. The course uses the natural log, so the maximum is "
               f"log 2 = {log2:.4f}")
    if _near(v, 2 * log2):
        c.fail(f"disjoint supports gave 2 log 2 = {2 * log2:.4f}: you dropped the ½ in JS = ½ KL(p‖m) + ½ KL(q‖m)")
    if not _near(v, log2):
        c.fail(f"distributions with disjoint supports have the maximal JS, log 2 = {log2:.4f}; got {v:.4f}")
    p, q = [0.5, 0.5], [1.0, 0.0]
    v = run(p, q)
    expected = reference(p, q)
    if not _near(v, expected):
        c.fail(f"for p = {p}, q = {q}: m = [0.75, 0.25], KL(p‖m) = 0.143841, KL(q‖m) = 0.287682, so JS = "
               f"{expected:.6f}; got {v:.6f}")
    v = run(a, b)
    if not _near(v, reference(a, b)):
        c.fail(f"for p = {_fmt(torch.tensor(a))} and q = {_fmt(torch.tensor(b))} JS = {reference(a, b):.6f}, got "
               f"{v:.6f}")
    return "0 for identical, log 2 for disjoint, 0.215762 by hand, symmetric"


# --- chapter 02: WGAN --------------------------------------------------------------------------------

@_exercise("2.1", "weight clipping, in place", "clip_weights_")
def check_clip_weights(c: _Checker, fn: Callable[[nn.Module, float], Any]) -> str:
    """Check ``clip_weights_(critic, c)`` clamps every parameter (weights and biases) of a critic to [-c, c] in place.

    Values inside the box must not move, values outside must land exactly on ±c, and the module must keep its
    parameter objects (an optimiser built earlier holds those).
    """
    critic = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1)).double()
    with torch.no_grad():
        for p in critic.parameters():
            p.copy_(torch.linspace(-0.05, 0.05, p.numel(), dtype=F64).view_as(p))
    clip = 0.02
    before = {name: p.detach().clone() for name, p in critic.named_parameters()}
    identity = {name: id(p) for name, p in critic.named_parameters()}
    c.call(fn, critic, clip)
    after = dict(critic.named_parameters())
    if set(after) != set(before) or any(id(after[k]) != identity[k] for k in before):
        c.fail("you replaced the critic's parameters by new tensors: an optimiser built before still updates the old "
               "ones, so training would silently stop being clipped. Change them in place: p.clamp_(-c, c)")
    if all(torch.equal(after[k].detach(), before[k]) for k in before):
        c.fail("nothing in the critic changed. `p = p.clamp(-c, c)` only rebinds the loop variable p; the in-place "
               "version p.clamp_(-c, c) (inside `with torch.no_grad():`) changes the parameter itself")
    for name, old in before.items():
        new = after[name].detach()
        if torch.equal(new, old.clamp(-clip, clip)):
            continue
        inside = old.abs() <= clip
        if not torch.equal(new[inside], old[inside]):
            i = int((new[inside] - old[inside]).abs().argmax())
            c.fail(f"values already inside [−{clip}, {clip}] changed: {name} held {old[inside][i]:.4f} and now holds "
                   f"{new[inside][i]:.4f}. Clipping leaves them alone and only moves the ones outside onto ±c")
        if torch.equal(new[~inside], old[~inside]):
            extra = " WGAN clips every parameter of the critic, biases included." if "bias" in name else ""
            c.fail(f"{name} still holds values outside [−{clip}, {clip}], e.g. {old[~inside][0]:.4f}.{extra}")
        j = int((new - old.clamp(-clip, clip)).abs().argmax())
        c.fail(f"in {name}, {old.flatten()[j]:.4f} should become {old.clamp(-clip, clip).flatten()[j]:.4f}, got "
               f"{new.flatten()[j]:.4f}")
    if not all(p.requires_grad for p in critic.parameters()):
        c.fail("after clipping some parameters no longer require grad, so the critic cannot train")
    return "every weight and bias clamped to [−c, c] in place, values inside untouched"


@_exercise("2.2", "the WGAN critic loss", "critic_loss")
def check_critic_loss(c: _Checker, fn: Callable[[Tensor, Tensor], Tensor]) -> str:
    """Check ``critic_loss(real_scores, fake_scores)`` = E[f(G(z))] - E[f(x)] (the loss the critic minimises).

    Two hand-computed batches (one where the critic already ranks reals higher, one where it does not) and the
    gradient: -1/N for each real score, +1/N for each fake score.
    """
    real = torch.tensor([2.0, 0.5, 1.5, 0.0], dtype=F64, requires_grad=True)   # mean 1.0
    fake = torch.tensor([-1.0, 0.5, 0.0, -0.5], dtype=F64, requires_grad=True)  # mean -0.25
    out = c.scalar(c.call(fn, real, fake), "your loss")
    v = _f(out)
    v2 = _f(c.scalar(c.call(fn, torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64)), "your loss"))
    if not (_near(v, -1.25) and _near(v2, 1.0)):
        if _near(v, 1.25) and _near(v2, 1.0):
            c.fail("your loss is never negative (an absolute value?): keep the sign of E[f(G(z))] − E[f(x)], it is "
                   "what "
                   "tells the critic which way to move; here it should be −1.25")
        if _near(v, 1.25) and _near(v2, -1.0):
            c.fail("the sign is flipped: you return E[f(x)] − E[f(G(z))], the critic's W1 estimate itself. The critic "
                   "*maximises* that, so the loss it minimises is E[f(G(z))] − E[f(x)] (here −0.25 − 1.0 = −1.25)")
        if _near(v, -5.0):
            c.fail("your loss is 4× too large for 4 samples: average the scores (.mean()), don't sum them")
        bce = (sum(_softplus(-r) for r in [2.0, 0.5, 1.5, 0.0]) + sum(_softplus(f) for f in [-1.0, 0.5, 0.0, -0.5])) / 4
        if _near(v, bce, 1e-4):
            c.fail("that is the BCE loss of chapter 01: a WGAN critic's score is not a probability (no sigmoid, no "
                   "log); "
                   "its loss is linear in the scores, E[f(G(z))] − E[f(x)]")
        if not _near(v, -1.25):
            c.fail(f"real scores with mean 1.0 and fake scores with mean −0.25 give E[f(G(z))] − E[f(x)] = −1.25; "
                   f"got {v:.4g}")
        c.fail(f"real scores 0 and fake scores 1 should give a loss of +1 (the critic ranks the fakes higher: bad for "
               f"it); got {v2:.4g}")
    if out.grad_fn is None:
        c.scalar(out, "your loss", needs_grad=True)
    g_real, g_fake = torch.autograd.grad(out, (real, fake), allow_unused=True)
    if g_real is None or g_fake is None or not (_close(g_real, torch.full((4,), -0.25, dtype=F64))
                                                and _close(g_fake, torch.full((4,), 0.25, dtype=F64))):
        c.fail("the value is right but the gradient is not: each real score should get −1/N, each fake score +1/N")
    return "E[f(G(z))] − E[f(x)], gradient ∓1/N"


@_exercise("2.3", "the exact W1 distance between two 1-D samples", "exact_w1_1d")
def check_exact_w1_1d(c: _Checker, fn: Callable[[Tensor, Tensor], Tensor]) -> str:
    """Check ``exact_w1_1d(x, y)`` = mean |sort(x) - sort(y)| for two equal-size 1-D samples.

    In 1-D the optimal transport plan matches the i-th smallest of x with the i-th smallest of y. Hand cases:
    W1([-1, 1], [0, 0]) = 1 (equal means!), W1([0, 1, 3], [2, 0, 1]) = 1/3, W1([0, 0], [3, 3]) = 3, and a shift
    by d moves W1 by exactly |d|.
    """
    def run(x: Sequence[float], y: Sequence[float]) -> float:
        t = lambda v: v if isinstance(v, Tensor) else torch.tensor(v, dtype=F64)  # noqa: E731
        return _f(c.scalar(c.call(fn, t(x), t(y)), "your distance"))

    v = run([-1.0, 1.0], [0.0, 0.0])
    if not _near(v, 1.0):
        if abs(v) < 1e-9:
            c.fail("W1([−1, 1], [0, 0]) should be 1 (each point travels distance 1), got 0: the difference of the "
                   "means "
                   "is only a lower bound on W1 — two distributions with the same mean can be far apart")
        c.fail(f"W1([−1, 1], [0, 0]) should be 1 (each point travels distance 1), got {v:.4g}")
    v = run([0.0, 1.0, 3.0], [2.0, 0.0, 1.0])
    if not _near(v, 1 / 3):
        if _near(v, 5 / 3):
            c.fail("W1([0, 1, 3], [2, 0, 1]) should be 1/3, got 5/3: you paired the samples by position. The optimal "
                   "plan in 1-D pairs them in sorted order (smallest with smallest): sort both first")
        c.fail(f"W1([0, 1, 3], [2, 0, 1]) should be 1/3 (sorted: [0, 1, 3] vs [0, 1, 2]), got {v:.4g}")
    v = run([0.0, 0.0], [3.0, 3.0])
    if not _near(v, 3.0):
        if _near(v, 9.0):
            c.fail("W1([0, 0], [3, 3]) should be 3, got 9: you squared the distances (that is W2², not W1)")
        c.fail(f"W1([0, 0], [3, 3]) should be 3, got {v:.4g}")
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(200, generator=gen, dtype=F64)
    y = x[torch.randperm(200, generator=gen)] + 0.7
    v = run(x, y)
    if not _near(v, 0.7):
        c.fail(f"shifting a sample by 0.7 (and shuffling it) must give W1 = 0.7 exactly, got {v:.6g}")
    return "mean |sort(x) − sort(y)|: equal means, shuffles and shifts all handled"


# --- chapter 03: WGAN-GP -----------------------------------------------------------------------------

class _RecordingCritic:
    """A critic with a known gradient that remembers what it was evaluated on."""

    def __init__(self, f: Callable[[Tensor], Tensor]) -> None:
        self.f, self.inputs = f, []  # type: Callable[[Tensor], Tensor], List[Tensor]

    def __call__(self, x: Tensor) -> Tensor:
        self.inputs.append(x)
        return self.f(x)


def _quadratic(x: Tensor) -> Tensor:
    """f(x) = ½‖x‖² per sample, shape (N, 1): its gradient is x itself, so ‖∇f(x_i)‖ = ‖x_i‖."""
    return 0.5 * x.pow(2).flatten(1).sum(1, keepdim=True)


@_exercise("3.1", "per-sample gradient norms of a critic", "grad_norms")
def check_grad_norms(c: _Checker, fn: Callable[[Callable[[Tensor], Tensor], Tensor], Tensor]) -> str:
    """Check ``grad_norms(critic, x)`` returns ‖∇_x f(x_i)‖ for every sample, shape (N,).

    A linear critic f(x) = w·x has gradient w everywhere (every norm is ‖w‖ = 5); f(x) = ½‖x‖² on image-shaped
    inputs has gradient x, so the norms are the samples' own norms over all their dimensions.
    """
    w = torch.tensor([3.0, 4.0], dtype=F64)
    x = torch.randn(6, 2, dtype=F64)
    out = c.call(fn, lambda v: v @ w[:, None], x)
    if isinstance(out, Tensor) and out.numel() == 1:
        c.fail("you returned one number for the whole batch: the penalty needs one gradient norm per sample, "
               "shape (N,) — take the norm of each row of the gradient, grad.flatten(1).norm(dim=1)")
    out = c.tensor(out, "your norms", shape=(6,), shape_hint="one norm per sample")
    if not _close(out, torch.full((6,), 5.0, dtype=F64)):
        if _close(out, torch.full((6,), 5.0 / 6, dtype=F64)):
            c.fail("your norms are N = 6 times too small: you differentiated critic(x).mean(). Use critic(x).sum(): "
                   "each output depends only on its own sample, so the gradient of the sum holds every per-sample "
                   "gradient unscaled")
        if _close(out, torch.full((6,), 25.0, dtype=F64)):
            c.fail("you returned squared norms (25 = 5²): take the square root, grad.flatten(1).norm(dim=1)")
        c.fail("for the linear critic f(x) = (3, 4)·x the gradient is (3, 4) everywhere, so every norm is 5; got "
               f"{_fmt(out)}")
    x = torch.randn(5, 1, 3, 3, dtype=F64)
    out = c.tensor(c.call(fn, _quadratic, x), "your norms", shape=(5,),
                   shape_hint="one norm per sample, over all of the sample's dimensions (flatten(1) before the norm)")
    expected = x.flatten(1).norm(dim=1)
    if not _close(out, expected):
        c.fail(f"for f(x) = ½‖x‖² on 1×3×3 images the gradient is x, so the norms are ‖x_i‖ = {_fmt(expected)}; got "
               f"{_fmt(out)}")
    return "one norm per sample: ‖w‖ for a linear critic, ‖x_i‖ for ½‖x‖²"


@_exercise("3.2", "the gradient penalty with one ε per sample", "gradient_penalty")
def check_gradient_penalty(c: _Checker, fn: Callable[[Callable[[Tensor], Tensor], Tensor, Tensor], Tensor]) -> str:
    """Check ``gradient_penalty(critic, real, fake)`` = E[(‖∇f(x̂)‖ - 1)²], x̂ = real + ε (fake - real), ε ~ U[0, 1].

    A recording critic f(x) = ½‖x‖² shows where the critic was evaluated: the ε of every element of x̂ is
    recovered from (x̂ - real)/(fake - real) and must be one number in [0, 1] per sample, different across
    samples; the value must equal the penalty of those interpolates. A linear critic then checks the value
    (‖w‖ - 1)² and that the penalty's gradient reaches the critic's weights (create_graph=True).
    """
    n = 8
    real = torch.randn(n, 1, 2, 2, dtype=F64)
    delta = (0.5 + torch.rand(n, 1, 2, 2, dtype=F64)) * torch.where(torch.rand(n, 1, 2, 2) < 0.5, -1.0, 1.0).double()
    fake = real + delta
    critic = _RecordingCritic(_quadratic)
    out = c.scalar(c.call(fn, critic, real, fake), "your penalty")
    if not critic.inputs:
        c.fail("your function never called the critic")
    graded = [x for x in critic.inputs if isinstance(x, Tensor) and x.requires_grad]
    x_hat = (graded[0] if graded else critic.inputs[-1]).detach()
    if x_hat.shape != real.shape:
        c.fail(f"the critic was called on a batch of shape {tuple(x_hat.shape)}; it should see the interpolates x̂, "
               f"one per sample, shape {tuple(real.shape)}")
    if _close(x_hat, real, atol=1e-12):
        c.fail("you evaluated the critic at the real samples, not at interpolates x̂ = real + ε (fake − real): the "
               "penalty must hold between the two distributions, where the generator's samples travel")
    if _close(x_hat, fake, atol=1e-12):
        c.fail("you evaluated the critic at the fake samples, not at interpolates x̂ = real + ε (fake − real)")
    eps = ((x_hat - real) / delta).flatten(1)
    inside = bool(((eps >= -1e-9) & (eps <= 1 + 1e-9)).all())
    if float((eps.max(1).values - eps.min(1).values).max()) > 1e-6:
        if inside:
            c.fail("you drew one ε per pixel (like torch.rand_like(real)), so x̂ is not on the straight line between "
                   "a real and a fake sample. WGAN-GP uses one ε per sample: torch.rand(N, 1, 1, 1), broadcast over "
                   "the sample's other dimensions")
        c.fail("your x̂ is not on the segment between each real sample and its fake: x̂ = real + ε (fake − real)")
    e = eps[:, 0]
    if not inside:
        c.fail(f"your interpolation weights ε = {_fmt(e)} are outside [0, 1]: draw them uniformly, torch.rand "
               "(torch.randn is a Gaussian)")
    if float(e.max() - e.min()) < 1e-9:
        c.fail(f"your penalty uses one ε for the whole batch: all {n} samples got the same interpolation weight "
               f"ε = {float(e[0]):.3f}. Draw one per sample, torch.rand(N, 1, 1, 1), so the interpolates cover the "
               "space between the distributions")
    norms = x_hat.flatten(1).norm(dim=1)
    expected = float(((norms - 1) ** 2).mean())
    v = _f(out)
    if not _near(v, expected, 1e-6):
        alternatives = [
            (float(((norms / n - 1) ** 2).mean()), f"your gradients are N = {n} times too small: differentiate "
             "critic(x̂).sum(), not .mean()"),
            (float(((norms - 1) ** 2).sum()), f"your penalty is summed over the {n} samples: average it (.mean())"),
            (float(((norms ** 2 - 1) ** 2).mean()), "you penalised the squared norm: (‖∇f‖ − 1)² uses the norm itself"),
            (float((x_hat.norm() - 1) ** 2), "you took one norm over the whole batch: take one norm per sample, "
             "grad.flatten(1).norm(dim=1)"),
            (float(((norms - 1).clamp(min=0) ** 2).mean()), "you penalised only norms above 1 (one-sided): WGAN-GP "
             "penalises the distance to 1 on both sides"),
        ]
        for value, message in alternatives:
            if _near(v, value, 1e-6):
                c.fail(message)
        c.fail(f"for the interpolates your critic saw, the gradient norms are {_fmt(norms)} (f = ½‖x‖², so ∇f(x̂) = "
               "x̂) "
               f"and the penalty mean((‖∇f‖ − 1)²) is {expected:.5f}; got {v:.5f}")
    lin = nn.Linear(4, 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.6, 0.8, 1.2, 0.0]], dtype=F64))
        lin.bias.fill_(0.3)
    norm_w = _f(lin.weight.norm())
    out = c.scalar(c.call(fn, lin, torch.randn(5, 4, dtype=F64), torch.randn(5, 4, dtype=F64)), "your penalty")
    if not _near(_f(out), (norm_w - 1) ** 2, 1e-6):
        c.fail(f"a linear critic f(x) = w·x + b has gradient w everywhere, so the penalty is (‖w‖ − 1)² = "
               f"{(norm_w - 1) ** 2:.5f} whatever ε is; got {_f(out):.5f}")
    message = ("your penalty does not depend on the critic's weights, so adding it to the critic's loss would not "
               "train "
               "the critic: pass create_graph=True to torch.autograd.grad so the gradient itself can be differentiated")
    if out.grad_fn is None:
        c.fail(message)
    (g,) = torch.autograd.grad(out, lin.weight, allow_unused=True)
    expected_g = 2 * (norm_w - 1) * lin.weight.detach() / norm_w
    if g is None or not _close(g, expected_g):
        c.fail(message + f" (∂penalty/∂w should be 2(‖w‖ − 1) w/‖w‖ = {_fmt(expected_g)}, got "
               f"{_fmt(g) if g is not None else 'none'})")
    return "interpolates with one ε ∈ [0, 1] per sample, the right penalty, and it trains the critic"


# --- chapter 04: LSGAN -------------------------------------------------------------------------------

@_exercise("4.1", "LSGAN's two losses for a coding (a, b, c)", "lsgan_losses")
def check_lsgan_losses(c: _Checker,
                       fn: Callable[[Tensor, Tensor, Tuple[float, float, float]], Tuple[Tensor, Tensor]]) -> str:
    """Check ``lsgan_losses(real_scores, fake_scores, (a, b, c))`` returns (D's loss, G's loss) of Mao et al. eq. 2.

    D: ½E[(D(x) - b)²] + ½E[(D(G(z)) - a)²]; G: ½E[(D(G(z)) - c)²]; by hand for both codings, plus the gradients
    (D(x) - b)/N and (D(G(z)) - c)/N.
    """
    r_vals, f_vals = [0.8, 1.3, 0.2], [-0.4, 0.1, 0.9]
    for coding in ((-1.0, 1.0, 0.0), (0.0, 1.0, 1.0)):
        a, b, cc = coding
        real = torch.tensor(r_vals, dtype=F64, requires_grad=True)
        fake = torch.tensor(f_vals, dtype=F64, requires_grad=True)
        out = c.call(fn, real, fake, coding)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            c.fail(f"return two losses, (d_loss, g_loss); got {type(out).__name__}")
        d = c.scalar(out[0], "your D loss")
        g = c.scalar(out[1], "your G loss")
        mean = lambda vals, t: sum((v - t) ** 2 for v in vals) / len(vals)  # noqa: E731
        d_exp = 0.5 * mean(r_vals, b) + 0.5 * mean(f_vals, a)
        g_exp = 0.5 * mean(f_vals, cc)
        name = f"coding (a, b, c) = ({a:g}, {b:g}, {cc:g})"
        if not _near(_f(d), d_exp):
            if _near(_f(d), 0.5 * mean(r_vals, a) + 0.5 * mean(f_vals, b)):
                c.fail(f"with {name} your D loss pulls the real scores towards a and the fakes towards b: a is the "
                       "target for fakes, b the target for reals")
            if _near(_f(d), 2 * d_exp):
                c.fail(f"with {name} your D loss is twice the expected {d_exp:.5f}: the paper's losses carry a ½")
            c.fail(f"with {name}, real scores {r_vals} and fake scores {f_vals}, D's loss ½E[(D(x) − b)²] + "
                   f"½E[(D(G(z)) − a)²] is {d_exp:.5f}; got {_f(d):.5f}")
        if not _near(_f(g), g_exp):
            if _near(_f(g), 0.5 * mean(f_vals, b)) and b != cc:
                c.fail(f"with {name} your G loss aims the fakes at b, the reals' target; LSGAN's generator aims at c "
                       "(in the paper's coding c = 0, halfway between a = −1 and b = 1)")
            if _near(_f(g), 0.5 * mean(f_vals, a)) and a != cc:
                c.fail(f"with {name} your G loss aims the fakes at a, the target D uses for fakes: G wants D to say c")
            if _near(_f(g), 2 * g_exp):
                c.fail(f"with {name} your G loss is twice the expected {g_exp:.5f}: the paper's losses carry a ½")
            c.fail(f"with {name} and fake scores {f_vals}, G's loss ½E[(D(G(z)) − c)²] is {g_exp:.5f}; got {_f(g):.5f}")
        d = c.scalar(out[0], "your D loss", needs_grad=True)
        g = c.scalar(out[1], "your G loss", needs_grad=True)
        (gr,) = torch.autograd.grad(d, real, retain_graph=True, allow_unused=True)
        (gf,) = torch.autograd.grad(g, fake, allow_unused=True)
        if gr is None or not _close(gr, (real.detach() - b) / 3):
            c.fail(f"with {name} the value of D's loss is right but not its gradient: ∂/∂D(x_i) = (D(x_i) − b)/N")
        if gf is None or not _close(gf, (fake.detach() - cc) / 3):
            c.fail(f"with {name} the value of G's loss is right but not its gradient: ∂/∂D(G(z_i)) = (D(G(z_i)) − c)/N")
    return "both losses and their gradients, in the paper's and the official coding"


@_exercise("4.2", "the generator's gradient at a score s, NS-GAN vs LSGAN", "generator_gradients")
def check_generator_gradients(c: _Checker, fn: Callable[[Tensor, float], Tuple[Tensor, Tensor]]) -> str:
    """Check ``generator_gradients(s, c)`` returns, per sample, d/ds softplus(-s) and d/ds ½(s - c)².

    Against central finite differences of the two per-sample losses, on scores from -4 to 8.
    """
    s_vals = [-4.0 + i for i in range(13)]
    cc = 1.0
    s = torch.tensor(s_vals, dtype=F64)
    out = c.call(fn, s, cc)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        c.fail(f"return two tensors, (ns_grad, ls_grad); got {type(out).__name__}")
    ns = c.tensor(out[0], "your NS-GAN gradient", shape=s.shape).detach().double()
    ls = c.tensor(out[1], "your LSGAN gradient", shape=s.shape).detach().double()
    h = 1e-5
    fd = lambda f: torch.tensor([(f(v + h) - f(v - h)) / (2 * h) for v in s_vals], dtype=F64)  # noqa: E731
    ns_exp = fd(lambda v: _softplus(-v))
    ls_exp = fd(lambda v: 0.5 * (v - cc) ** 2)
    n = len(s_vals)
    if not _close(ns, ns_exp, atol=1e-7):
        if _close(ns, -ns_exp, atol=1e-7):
            c.fail("your NS-GAN gradient has the wrong sign: softplus(−s) decreases as s grows, so its derivative "
                   "−σ(−s) is negative")
        if _close(ns, -torch.sigmoid(s), atol=1e-7):
            c.fail("that is the minimax loss's derivative, −σ(s) (of −softplus(s)); the non-saturating loss "
                   "softplus(−s) "
                   "has derivative −σ(−s), which dies away as s grows")
        if _close(ns * n, ns_exp, atol=1e-6):
            c.fail(f"your NS-GAN gradients are N = {n} times too small: you differentiated the batch mean; per sample "
                   "there is no 1/N (or differentiate loss * N, as the chapter does)")
        c.fail(f"d/ds softplus(−s) = −σ(−s) = {_fmt(ns_exp)} at s = {s_vals[:6]}..., got {_fmt(ns)}")
    if not _close(ls, ls_exp, atol=1e-7):
        if _close(ls, -ls_exp, atol=1e-7):
            c.fail("your LSGAN gradient has the wrong sign: d/ds ½(s − c)² = s − c")
        if _close(ls, 2 * ls_exp, atol=1e-7):
            c.fail("your LSGAN gradient is twice too large: the loss is ½(s − c)², so the ½ cancels the 2: s − c")
        if _close(ls * n, ls_exp, atol=1e-6):
            c.fail(f"your LSGAN gradients are N = {n} times too small: per sample there is no 1/N")
        c.fail(f"d/ds ½(s − c)² with c = 1 is s − 1 = {_fmt(ls_exp)} at s = {s_vals[:6]}..., got {_fmt(ls)}")
    i6 = s_vals.index(6.0)
    return (f"at s = 6 (a fake that fools D) NS-GAN's gradient is {abs(float(ns[i6])):.4f}, LSGAN's "
            f"{abs(float(ls[i6])):.0f}")


# --- chapter 05: training tips -----------------------------------------------------------------------

@_exercise("5.1", "one-sided label smoothing", "smoothed_d_loss")
def check_smoothed_d_loss(c: _Checker, fn: Callable[..., Tensor]) -> str:
    """Check ``smoothed_d_loss(real_logits, fake_logits, smoothing)``: BCE with target 1 - smoothing for the reals and
    0 for the fakes.

    The targets are read off the gradient (for BCE on a logit l with target t, ∂/∂l = (σ(l) - t)/N), so the
    message says which target each side got; the value uses BCE(l, t) = softplus(l) - t·l. Finite at logits ±100.
    """
    r_vals, f_vals = [-1.0, 0.5, 2.0, 3.0], [-2.0, 0.0, 1.0]
    for smoothing in (0.1, 0.25):
        real = torch.tensor(r_vals, dtype=F64, requires_grad=True)
        fake = torch.tensor(f_vals, dtype=F64, requires_grad=True)
        out = c.scalar(c.call(fn, real, fake, smoothing), "your loss", needs_grad=True)
        g_r, g_f = torch.autograd.grad(out, (real, fake), allow_unused=True)
        if g_r is None or g_f is None:
            c.fail("your loss must depend on both the real and the fake logits")
        sig_r, sig_f = torch.sigmoid(real.detach()), torch.sigmoid(fake.detach())
        target_r = sig_r - len(r_vals) * g_r
        target_f = sig_f - len(f_vals) * g_f
        summed_r = sig_r - g_r
        if float(target_r.max() - target_r.min()) > 1e-6 and float(summed_r.max() - summed_r.min()) < 1e-6:
            c.fail("your loss sums over the samples: average each BCE term over its batch (.mean())")
        if float(target_r.max() - target_r.min()) > 1e-6 or float(target_f.max() - target_f.min()) > 1e-6:
            c.fail("your loss does not behave like binary cross-entropy on the logits (for a target t its gradient is "
                   "(σ(logit) − t)/N): use F.binary_cross_entropy_with_logits, or softplus(l) − t·l")
        t_r, t_f = float(target_r.mean()), float(target_f.mean())
        if not _near(t_r, 1 - smoothing):
            if _near(t_r, 1.0):
                c.fail(f"your real target is 1: no smoothing happened. With smoothing = {smoothing} the reals' target "
                       f"is 1 − {smoothing} = {1 - smoothing:g}")
            if _near(t_r, smoothing):
                c.fail(f"your real target is {smoothing}, the smoothing amount itself: the target is 1 − smoothing = "
                       f"{1 - smoothing:g}")
            c.fail(f"your real target is {t_r:.4g}; with smoothing = {smoothing} it should be {1 - smoothing:g}")
        if not _near(t_f, 0.0):
            if _near(t_f, smoothing):
                c.fail(f"you smoothed the fake labels too (target {smoothing}): one-sided smoothing keeps the fakes' "
                       "target at 0 — a positive target for fakes would let D* reward samples where there is no data "
                       "(Salimans et al. 2016, Sec. 3.4)")
            c.fail(f"your fake target is {t_f:.4g}; one-sided smoothing keeps it at 0")
        expected = (sum(_softplus(l) - (1 - smoothing) * l for l in r_vals) / len(r_vals)
                    + sum(_softplus(l) for l in f_vals) / len(f_vals))
        if not _near(_f(out), expected):
            c.fail(f"the targets are right but the value is {_f(out):.5f}, expected {expected:.5f}: the loss is the "
                   "sum of the two batch-mean BCE terms")
    far = c.scalar(c.call(fn, torch.tensor([100.0, -100.0]), torch.tensor([100.0, -100.0]), 0.1), "your loss")
    if not math.isfinite(_f(far)):
        c.fail("your loss is inf or nan at logits ±100: compute BCE from logits (F.binary_cross_entropy_with_logits), "
               "not log(sigmoid(·))")
    return "reals aim at 1 − smoothing, fakes at 0, stable from logits"


@_exercise("5.2", "instance noise on both batches", "add_instance_noise")
def check_instance_noise(c: _Checker, fn: Callable[[Tensor, Tensor, float], Tuple[Tensor, Tensor]]) -> str:
    """Check ``add_instance_noise(real, fake, sigma)`` adds fresh N(0, σ²) noise to every element of both batches.

    Statistics on 16,000 values per batch: mean 0, standard deviation σ, independent between the two batches and
    between the elements of a sample; the inputs unchanged; σ = 0 is the identity; gradients still reach the fakes.
    """
    n, d, sigma = 2000, 8, 0.3
    real = torch.zeros(n, d, dtype=F64)
    fake = torch.full((n, d), 0.5, dtype=F64, requires_grad=True)
    real_before, fake_before = real.clone(), fake.detach().clone()
    out = c.call(fn, real, fake, sigma, hint="return new tensors (real + noise), don't add to the inputs in place")
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        c.fail(f"return the two noisy batches, (noisy_real, noisy_fake); got {type(out).__name__}")
    noisy_r = c.tensor(out[0], "your noisy real batch", shape=real.shape)
    noisy_f = c.tensor(out[1], "your noisy fake batch", shape=fake.shape)
    if not torch.equal(real, real_before) or not torch.equal(fake.detach(), fake_before):
        c.fail("you modified the input batch in place: return new tensors (real + noise), so the caller's data stay "
               "clean")
    noise_r, noise_f = (noisy_r - real).detach(), (noisy_f - fake).detach()
    for name, noise in (("real", noise_r), ("fake", noise_f)):
        std, mean = float(noise.std()), float(noise.mean())
        if std < 1e-9:
            c.fail(f"no noise was added to the {name} batch")
        if abs(mean) > 0.05:
            c.fail(f"the noise on the {name} batch has mean {mean:.3f}: instance noise is zero-mean Gaussian "
                   "(torch.randn_like; torch.rand is uniform on [0, 1))")
        if abs(std - math.sqrt(sigma)) < 0.03:
            c.fail(f"the noise has standard deviation {std:.3f} ≈ √σ = {math.sqrt(sigma):.3f}: σ = {sigma} is a "
                   "standard "
                   "deviation, not a variance — multiply torch.randn_like(x) by σ")
        if abs(std - sigma) > 0.05 * sigma:
            c.fail(f"the noise on the {name} batch has standard deviation {std:.3f}, expected σ = {sigma}")
        if bool((noise[:, 0] - noise[:, 1]).abs().max() < 1e-12):
            c.fail("every element of a sample got the same noise value: instance noise draws an independent value "
                   "for every element (pixel), torch.randn_like(x)")
    corr = float(torch.corrcoef(torch.stack([noise_r.flatten(), noise_f.flatten()]))[0, 1])
    if corr > 0.5:
        c.fail(f"the real and the fake batch got the same noise (correlation {corr:.2f}): draw fresh noise for each "
               "batch, or D can learn to subtract it")
    if noisy_f.grad_fn is None:
        c.fail("the noisy fakes no longer depend on the generator's output (did you detach?): G must still learn "
               "through the noise")
    (g,) = torch.autograd.grad(noisy_f.sum(), fake, allow_unused=True)
    if g is None or not _close(g, torch.ones_like(g)):
        c.fail("the gradient of the noisy fakes w.r.t. the fakes should be 1 (noise is only added)")
    out0 = c.call(fn, real, fake, 0.0)
    if not (isinstance(out0, (tuple, list)) and len(out0) == 2 and _close(out0[0], real, atol=1e-12)
            and _close(out0[1], fake, atol=1e-12)):
        c.fail("with σ = 0 the batches must come back unchanged")
    return f"fresh N(0, {sigma}²) noise per element and per batch, inputs untouched, gradients kept"


@_exercise("5.3", "one step of an exponential moving average of G's weights", "ema_update_")
def check_ema_update(c: _Checker, fn: Callable[[nn.Module, nn.Module, float], Any]) -> str:
    """Check ``ema_update_(ema_model, model, decay)``: every EMA parameter ← decay · itself + (1 - decay) · model's.

    In place (same parameter objects), the training model untouched, and two steps in a row compose.
    """
    torch.manual_seed(7)
    model, ema = nn.Linear(3, 2).double(), nn.Linear(3, 2).double()
    ids = [id(p) for p in ema.parameters()]
    for step in range(2):
        old = [p.detach().clone() for p in ema.parameters()]
        theta = [p.detach().clone() for p in model.parameters()]
        decay = 0.9
        c.call(fn, ema, model, decay)
        if [id(p) for p in ema.parameters()] != ids:
            c.fail("you replaced the EMA model's parameters by new tensors; update them in place "
                   "(p_ema.mul_(decay).add_(p, alpha=1 − decay) inside torch.no_grad())")
        if not all(torch.equal(p.detach(), t) for p, t in zip(model.parameters(), theta)):
            c.fail("you changed the training model's weights: only the EMA copy moves")
        new = [p.detach() for p in ema.parameters()]
        if all(torch.equal(a, b) for a, b in zip(new, old)):
            c.fail("nothing changed in the EMA model: update its parameters in place (p_ema.mul_(...).add_(...) or "
                   "p_ema.copy_(...)); assigning to the loop variable does not change the module")
        expected = [decay * o + (1 - decay) * t for o, t in zip(old, theta)]
        if not all(_close(a, b, atol=1e-12) for a, b in zip(new, expected)):
            swapped = [(1 - decay) * o + decay * t for o, t in zip(old, theta)]
            if all(_close(a, b, atol=1e-12) for a, b in zip(new, swapped)):
                c.fail("you weighted the new weights by decay (0.9) and the running average by 1 − decay: an EMA keeps "
                       "most of its past, ema ← decay · ema + (1 − decay) · θ")
            if all(_close(a, b, atol=1e-12) for a, b in zip(new, theta)):
                c.fail("you copied the model's weights into the EMA: with decay 0.9 only 10 % of the new weights go in")
            c.fail("after one step an EMA parameter should be decay · old + (1 − decay) · θ; yours differs")
        with torch.no_grad():  # the model trains a little between the two steps
            for p in model.parameters():
                p.add_(0.5)
    return "ema ← decay · ema + (1 − decay) · θ, in place, twice in a row"


# --- chapter 06: DCGAN -------------------------------------------------------------------------------

@_exercise("6.1", "the DCGAN weight initialisation", "dcgan_init")
def check_dcgan_init(c: _Checker, fn: Callable[[nn.Module], Any]) -> str:
    """Check ``dcgan_init(module)``: conv and transposed-conv weights ~ N(0, 0.02), their biases 0; BatchNorm
    weight ~ N(1, 0.02), bias 0 -- in every sub-module, nested ones included.

    Every parameter starts at 0.5, so an untouched layer is recognised; the sample mean and standard deviation of
    tens of thousands of weights are compared with 0 and 0.02 (±10 %).
    """
    net = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(4096),
                        nn.Sequential(nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2)))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.5)
    c.call(fn, net)
    layers = [("the ConvTranspose2d", net[0].weight, 0.0, "isinstance(m, nn.Conv2d) is False for nn.ConvTranspose2d: "
               "test for both classes"),
              ("the Conv2d inside a nested block", net[2][0].weight, 0.0, "loop over module.modules() (every "
               "descendant), not module.children() (only the top level)"),
              ("the BatchNorm2d", net[1].weight, 1.0, "test for nn.BatchNorm2d too")]
    for name, w, mean_target, hint in layers:
        w = w.detach()
        what = f"the scales (gamma) of {name}" if mean_target == 1.0 else f"the weights of {name}"
        if bool((w == 0.5).all()):
            c.fail(f"{what} were not initialised: {hint}")
        mean, std = float(w.mean()), float(w.std())
        if mean_target == 1.0 and abs(mean) < 0.01:
            c.fail(f"{what} have mean {mean:.3f}: a BatchNorm scale near 0 multiplies every activation by ≈ 0 and "
                   "switches the layer off. DCGAN draws gamma from N(1, 0.02)")
        if abs(mean - mean_target) > 0.003:
            c.fail(f"{what} have mean {mean:.4f}, expected {mean_target:g}")
        if abs(std - math.sqrt(0.02)) < 0.01:
            c.fail(f"{what} have standard deviation {std:.3f} ≈ √0.02: nn.init.normal_(w, mean, std) takes a "
                   "standard deviation — 0.02 — not a variance")
        if abs(std - 0.02) > 0.002:
            c.fail(f"{what} have standard deviation {std:.4f}, expected 0.02")
    for name, b in (("the Conv2d's bias", net[2][0].bias), ("the BatchNorm2d's bias (beta)", net[1].bias)):
        if not bool((b.detach() == 0).all()):
            c.fail(f"{name} should be 0, got values like {_fmt(b)}")
    return "conv/transposed-conv weights N(0, 0.02), BatchNorm gamma N(1, 0.02), biases 0, nested layers included"


@_exercise("6.2", "spherical interpolation (slerp) between two latents", "slerp")
def check_slerp(c: _Checker, fn: Callable[[Tensor, Tensor, float], Tensor]) -> str:
    """Check ``slerp(z_a, z_b, t)`` for 1-D latents: the ends, the midpoint of two orthogonal unit vectors
    ((e1 + e2)/√2, norm 1, not lerp's 0.707), norm and angle along the path (angle(z_a, slerp) = tΩ), and the
    parallel case (no 0/0).
    """
    e1, e2 = torch.tensor([1.0, 0.0, 0.0], dtype=F64), torch.tensor([0.0, 1.0, 0.0], dtype=F64)
    start = c.tensor(c.call(fn, e1, e2, 0.0), "slerp(z_a, z_b, 0)", shape=(3,))
    end = c.tensor(c.call(fn, e1, e2, 1.0), "slerp(z_a, z_b, 1)", shape=(3,))
    if _close(start, e2) and _close(end, e1):
        c.fail("the ends are swapped: t = 0 must give z_a and t = 1 give z_b")
    if not (_close(start, e1) and _close(end, e2)):
        c.fail(f"t = 0 must give z_a and t = 1 give z_b; for z_a = e1, z_b = e2 you returned {_fmt(start)} and "
               f"{_fmt(end)}")
    mid = c.tensor(c.call(fn, e1, e2, 0.5), "slerp(z_a, z_b, 0.5)", shape=(3,))
    expected = (e1 + e2) / math.sqrt(2)
    if not _close(mid, expected):
        if _close(mid, (e1 + e2) / 2):
            c.fail("your midpoint of two orthogonal unit vectors is (e1 + e2)/2, with norm 0.707: that is the straight "
                   "line (lerp). Slerp follows the sphere: (e1 + e2)/√2, norm 1")
        c.fail(f"the midpoint of e1 and e2 along the sphere is (e1 + e2)/√2 = {_fmt(expected)}; got {_fmt(mid)}")
    gen = torch.Generator().manual_seed(11)
    za, zb = torch.randn(100, generator=gen, dtype=F64), torch.randn(100, generator=gen, dtype=F64)
    za, zb = 10 * za / za.norm(), 10 * zb / zb.norm()
    omega = math.acos(float(za @ zb) / 100)
    for t in (0.3, 0.8):
        z = c.tensor(c.call(fn, za, zb, t), f"slerp(z_a, z_b, {t})", shape=(100,)).detach().double()
        if abs(float(z.norm()) - 1.0) < 1e-6:
            c.fail("your result has norm 1: you normalised it. For two latents of norm 10 slerp keeps norm 10 all "
                   "along "
                   "the path (the latent's scale is part of what G sees)")
        if abs(float(z.norm()) - 10.0) > 1e-6:
            c.fail(f"two latents of norm 10 should stay at norm 10 along the path; at t = {t} yours has norm "
                   f"{float(z.norm()):.4f}")
        angle = math.acos(max(-1.0, min(1.0, float(za @ z) / (10 * float(z.norm())))))
        if abs(angle - t * omega) > 1e-6:
            c.fail(f"at t = {t} the angle from z_a should be t·Ω = {t * omega:.4f} rad, got {angle:.4f}")
    same = c.tensor(c.call(fn, za, za.clone(), 0.5), "slerp(z, z, 0.5)", shape=(100,), finite=False)
    if not bool(torch.isfinite(same).all()):
        c.fail("slerp(z, z, 0.5) gave nan: for (almost) parallel latents Ω ≈ 0 and sin Ω ≈ 0 — fall back to the "
               "straight "
               "line (1 − t) z_a + t z_b when Ω is tiny")
    if not _close(same, za):
        c.fail(f"slerp(z, z, t) should be z itself; got {_fmt(same)}")
    return "ends, orthogonal midpoint (norm 1), norm and angle tΩ along the path, parallel latents"


# --- chapter 07: conditional GANs --------------------------------------------------------------------

@_exercise("7.1", "one-hot label planes for the discriminator's input", "label_planes")
def check_label_planes(c: _Checker, fn: Callable[[Tensor, int, int], Tensor]) -> str:
    """Check ``label_planes(y, n_classes, size)`` returns floats (N, n_classes, size, size): the plane of class y
    all ones, every other plane all zeros -- for 10 classes and for 4.
    """
    for y_vals, k, size in (([3, 0, 9, 3], 10, 5), ([1, 2], 4, 3)):
        y = torch.tensor(y_vals)
        out = c.call(fn, y, k, size)
        if not isinstance(out, Tensor):
            c.fail(f"return a tensor, got {type(out).__name__}")
        n = len(y_vals)
        shape = (n, k, size, size)
        if tuple(out.shape) == (n, size, size, k):
            c.fail(f"your planes are channels-last, {tuple(out.shape)}: PyTorch images are (N, C, H, W), so the class "
                   f"planes go in dimension 1: {shape}")
        if tuple(out.shape) == (n, k, 1, 1):
            c.fail(f"your planes are 1×1, {tuple(out.shape)}: expand them to the image size, {shape} "
                   "(.expand(-1, -1, size, size))")
        if out.dim() == 4 and out.shape[0] == n and out.shape[2:] == (size, size) and out.shape[1] != k:
            c.fail(f"you made {out.shape[1]} planes for n_classes = {k}: use the n_classes argument")
        c.tensor(out, "your planes", shape=shape)
        if not out.is_floating_point():
            c.fail(f"your planes have dtype {out.dtype}: D concatenates them with float images, so return floats "
                   "(.float())")
        for i, label in enumerate(y_vals):
            ones = [j for j in range(k) if bool((out[i, j] == 1).all())]
            zeros = [j for j in range(k) if bool((out[i, j] == 0).all())]
            if ones == [label] and len(zeros) == k - 1:
                continue
            if len(ones) == 1 and len(zeros) == k - 1:
                c.fail(f"sample {i} has label {label} but its all-ones plane is plane {ones[0]}: plane y must be the "
                       "ones")
            c.fail(f"sample {i} (label {label}) should have plane {label} all ones and the other {k - 1} planes all "
                   "zeros; "
                   f"all-ones planes: {ones}, all-zero planes: {len(zeros)} of {k - 1}")
    return "(N, n_classes, size, size) floats, plane y all ones, the rest zeros"


@_exercise("7.2", "the projection discriminator's logit", "projection_logit")
def check_projection_logit(c: _Checker, fn: Callable[..., Tensor]) -> str:
    """Check ``projection_logit(features, psi_weight, psi_bias, class_vectors, y)`` = ψ·φ(x) + b + ⟨V_y, φ(x)⟩
    (Miyato & Koyama 2018, eq. 3) against sums written out by hand.
    """
    phi = [[1.0, 2.0, -1.0], [0.5, -1.0, 2.0], [3.0, 0.5, 0.0], [-1.0, 1.0, 1.0]]
    psi, bias = [0.5, -1.0, 0.25], 0.3
    vectors = [[1.0, 0.0, 2.0], [0.0, 1.5, -1.0], [2.0, -1.0, 0.5]]
    y = [2, 0, 1, 2]
    dot = lambda a, b: sum(u * v for u, v in zip(a, b))  # noqa: E731
    uncond = [dot(f, psi) + bias for f in phi]
    proj = [dot(vectors[label], f) for f, label in zip(phi, y)]
    expected = torch.tensor([u + p for u, p in zip(uncond, proj)], dtype=F64)
    out = c.call(fn, torch.tensor(phi, dtype=F64), torch.tensor(psi, dtype=F64), bias, torch.tensor(vectors, dtype=F64),
                 torch.tensor(y))
    if isinstance(out, Tensor) and tuple(out.shape) == (4, 3):
        c.fail("you returned a (N, n_classes) table, the inner product with every class vector: pick each sample's own "
               "class, class_vectors[y], before the inner product")
    if isinstance(out, Tensor) and tuple(out.shape) == (4, 1):
        out = out[:, 0]
    out = c.tensor(out, "your logits", shape=(4,), shape_hint="one logit per sample").detach().double()
    if not _close(out, expected):
        if _close(out, torch.tensor(uncond, dtype=F64)):
            c.fail("you left out the class term ⟨V_y, φ(x)⟩: without it D ignores the label entirely")
        if _close(out, torch.tensor(proj, dtype=F64)):
            c.fail("the unconditional term ψ·φ(x) + b is missing: D must also judge realism regardless of the class")
        if _close(out, expected - bias):
            c.fail("the bias b of the unconditional term is missing")
        all_classes = [dot(f, [sum(col) for col in zip(*vectors)]) for f in phi]
        if _close(out, torch.tensor(uncond, dtype=F64) + torch.tensor(all_classes, dtype=F64)):
            c.fail("you summed the inner products over all classes: use only the sample's own class vector, "
                   "class_vectors[y]")
        c.fail(f"for these features the logits ψ·φ + b + ⟨V_y, φ⟩ are {_fmt(expected)}; got {_fmt(out)}")
    return "ψ·φ(x) + b + ⟨V_y, φ(x)⟩ for each sample's own class"


# --- chapter 08: LapGAN ------------------------------------------------------------------------------

def _block_mean(x: Tensor) -> Tensor:
    """2x2 average pooling written out: the mean of every 2x2 block."""
    n, ch, h, w = x.shape
    return x.reshape(n, ch, h // 2, 2, w // 2, 2).mean(dim=(3, 5))


def _bilinear_up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


@_exercise("8.1", "one level of a Laplacian pyramid", "laplacian_level")
def check_laplacian_level(c: _Checker, fn: Callable[[Tensor], Tuple[Tensor, Tensor]]) -> str:
    """Check ``laplacian_level(image)`` returns (h, coarse): coarse = the mean of every 2x2 block, h = image - u(coarse)
    with u the 2x bilinear up-sampling (half-pixel centres), so that u(coarse) + h rebuilds the image exactly.
    """
    x = torch.randn(2, 3, 8, 8, dtype=F64)
    out = c.call(fn, x)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        c.fail(f"return two tensors, (residual, coarse); got {type(out).__name__}")
    residual, coarse = out
    coarse = c.tensor(coarse, "your coarse image", shape_hint="").detach().double()
    if tuple(coarse.shape) == tuple(x.shape) and isinstance(residual, Tensor) and tuple(residual.shape) == (2, 3, 4, 4):
        c.fail("you returned (coarse, residual): the order is (residual, coarse)")
    c.tensor(coarse, "your coarse image", shape=(2, 3, 4, 4), shape_hint="half the size of the image")
    expected_coarse = _block_mean(x)
    if not _close(coarse, expected_coarse):
        if _close(coarse, x[..., ::2, ::2]):
            c.fail("your coarse image keeps every other pixel: d(·) averages each 2×2 block (F.avg_pool2d(x, 2)); "
                   "subsampling aliases fine detail into the thumbnail")
        c.fail(f"the coarse image should be the mean of each 2×2 block, e.g. {_fmt(expected_coarse[0, 0, 0])} in the "
               f"first row; got {_fmt(coarse[0, 0, 0])}")
    residual = c.tensor(residual, "your residual", shape=x.shape).detach().double()
    expected = x - _bilinear_up(expected_coarse)
    if not _close(residual, expected):
        if _close(residual, -expected):
            c.fail("your residual has the wrong sign: h = I − u(d(I)), what up-sampling missed, so that u(coarse) + "
                   "h = I")
        if _close(residual, x - F.interpolate(expected_coarse, scale_factor=2, mode="nearest")):
            c.fail("you up-sampled by nearest neighbour; the chapter's u is bilinear, "
                   "F.interpolate(coarse, scale_factor=2, mode='bilinear', align_corners=False)")
        if _close(residual, x - F.interpolate(expected_coarse, scale_factor=2, mode="bilinear", align_corners=True)):
            c.fail("you up-sampled with align_corners=True; the chapter's u uses half-pixel centres, "
                   "align_corners=False")
        c.fail("your residual is not image − u(coarse) with u the bilinear 2× up-sampling")
    return "coarse = 2×2 block means, h = I − u(coarse), and u(coarse) + h = I exactly"


@_exercise("8.2", "rebuild an image from its Laplacian pyramid", "rebuild")
def check_rebuild(c: _Checker, fn: Callable[[List[Tensor]], Tensor]) -> str:
    """Check ``rebuild([h_0, ..., h_{K-1}, I_K])`` (finest first) returns the image the pyramid was made from.

    The pyramid is built here with 2x2 block means and bilinear up-sampling, from 16x16 images, three levels.
    """
    x = torch.randn(2, 1, 16, 16, dtype=F64)
    gauss = [x, _block_mean(x), _block_mean(_block_mean(x))]
    pyramid = [gauss[0] - _bilinear_up(gauss[1]), gauss[1] - _bilinear_up(gauss[2]), gauss[2]]
    hint = ("the pyramid is finest first, [h_0 (16×16), h_1 (8×8), I_2 (4×4)]: start from the coarsest image, the last "
            "element, and for h in reversed(pyramid[:-1]) do image = u(image) + h")
    out = c.tensor(c.call(fn, [p.clone() for p in pyramid], hint=hint), "your image", shape=x.shape,
                   shape_hint=hint).detach().double()
    if not _close(out, x, atol=1e-10):
        if _close(out, _bilinear_up(_bilinear_up(gauss[2])), atol=1e-10):
            c.fail("you only up-sampled the coarsest image: add each level's residual after up-sampling to its size")
        near = gauss[2]
        for h in (pyramid[1], pyramid[0]):
            near = F.interpolate(near, scale_factor=2, mode="nearest") + h
        if _close(out, near, atol=1e-10):
            c.fail("you up-sampled by nearest neighbour: use the same u the pyramid was built with, bilinear "
                   "(align_corners=False) — only then is the reconstruction exact")
        c.fail("the pyramid's reconstruction must equal the image exactly (max error "
               f"{float((out - x).abs().max()):.3g}): "
               + hint)
    single = c.tensor(c.call(fn, [gauss[2].clone()]), "rebuild([I])", shape=gauss[2].shape)
    if not _close(single, gauss[2], atol=1e-12):
        c.fail("a pyramid with one level, [I], is the image itself")
    return "the 16×16 images rebuilt exactly from [h_16, h_8, I_4]"


# --- chapter 09: PGGAN -------------------------------------------------------------------------------

def _nearest_up(x: Tensor) -> Tensor:
    return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


@_exercise("9.1", "PGGAN's fade-in blend", "fade_in")
def check_fade_in(c: _Checker, fn: Callable[[Tensor, Tensor, float], Tensor]) -> str:
    """Check ``fade_in(old_rgb, new_rgb, alpha)`` = (1 - α) up(old) + α new, with up = nearest neighbour (each pixel
    copied into a 2x2 block) and the course's convention: α = 0 is the old path only, α = 1 the new block only.
    """
    old = torch.randn(2, 3, 4, 4, dtype=F64)
    new = torch.randn(2, 3, 8, 8, dtype=F64)
    up = _nearest_up(old)
    hint = "old_rgb is half the size of new_rgb: up-sample it 2× first (F.interpolate(old_rgb, scale_factor=2))"
    outs = {}
    for alpha in (0.0, 1.0, 0.3):
        outs[alpha] = c.tensor(c.call(fn, old, new, alpha, hint=hint), f"fade_in at α = {alpha}", shape=new.shape,
                               shape_hint=hint).detach().double()
    if _close(outs[0.0], new) and _close(outs[1.0], up):
        c.fail("your convention is reversed: in ganlib α = 0 is the old (up-sampled) path only and α = 1 the new block "
               "only, so the new block's weight grows from 0 to 1 while it fades in")
    bilinear = F.interpolate(old, scale_factor=2, mode="bilinear", align_corners=False)
    if _close(outs[0.0], bilinear):
        c.fail("you up-sampled the old image bilinearly: PGGAN up-samples by nearest neighbour, copying each pixel "
               "into "
               "a 2×2 block (F.interpolate(..., mode='nearest'))")
    if not _close(outs[0.0], up):
        c.fail("at α = 0 the output must be the old image up-sampled by nearest neighbour, each pixel copied into a "
               "2×2 block")
    if not _close(outs[1.0], new):
        c.fail("at α = 1 the output must be the new block's image")
    if not _close(outs[0.3], 0.7 * up + 0.3 * new):
        c.fail("at α = 0.3 the output should be 0.7 · up(old) + 0.3 · new: a linear blend")
    return "(1 − α) · up(old) + α · new, α = 0 old only, nearest-neighbour up-sampling"


@_exercise("9.2", "the minibatch standard-deviation feature", "minibatch_stddev")
def check_minibatch_stddev(c: _Checker, fn: Callable[[Tensor, int], Tensor]) -> str:
    """Check ``minibatch_stddev(x, group_size)`` appends one channel: the population std over each group, averaged
    over C, H, W, with PGGAN's grouping (x.reshape(G, N // G, ...): sample i is in group i mod (N // G)).

    A batch of 8 built so that the even samples are identical (std 0) and the odd ones are 3, 3, −1, −1 (mean 1, std 2).
    """
    n, ch, h, w = 8, 2, 3, 3
    x = torch.empty(n, ch, h, w, dtype=F64)
    x[0::2] = 0.7                                   # group 0 (samples 0, 2, 4, 6): identical
    for k, i in enumerate(range(1, n, 2)):          # group 1 (samples 1, 3, 5, 7): 3, 3, -1, -1
        x[i] = 1.0 + (2.0 if k < 2 else -2.0)
    out = c.call(fn, x, 4)
    out = c.tensor(out, "your output", shape=(n, ch + 1, h, w), shape_hint="the input with one extra channel appended")
    out = out.detach().double()
    if not torch.equal(out[:, :ch], x):
        c.fail("the first C channels must be the input itself; append the feature as one extra channel at the end "
               "(torch.cat([x, feature], dim=1))")
    feat = out[:, ch]
    if float((feat - feat[:, :1, :1]).abs().max()) > 1e-12:
        c.fail("the extra channel must be constant over each sample's H × W (one number per group, tiled)")
    v = feat[:, 0, 0]
    even, odd = v[0::2], v[1::2]
    if bool((v - v[0]).abs().max() < 1e-9):
        c.fail("every sample got the same value: compute the std over each group of G samples separately, not over "
               "the whole batch")
    if float(even.abs().max()) > 1e-3:
        consecutive = x[:4].std(dim=0, unbiased=False).mean()
        if abs(float(v[0]) - float(consecutive)) < 1e-3 or abs(float(v[0]) - float(x[:4].std(dim=0).mean())) < 1e-3:
            c.fail("you grouped consecutive samples (0–3, 4–7); PGGAN's official code groups with x.reshape(G, N // "
                   "G, ...), "
                   "which puts sample i in group i mod (N // G). Here the even samples are identical, so their feature "
                   f"must be ≈ 0; yours is {float(v[0]):.3f}")
        c.fail(f"the even samples 0, 2, 4, 6 form one group and are identical, so their feature must be ≈ 0 "
               f"(√(0 + 1e-8)); got {_fmt(even)}")
    if _close(odd, torch.full_like(odd, 2.0 * math.sqrt(4 / 3)), atol=1e-4):
        c.fail("you used the unbiased standard deviation (dividing by G − 1, torch.std's default): PGGAN uses the "
               "population std, the square root of the mean squared deviation (÷ G)")
    if not _close(odd, torch.full_like(odd, 2.0), atol=1e-4):
        c.fail(f"the odd samples 1, 3, 5, 7 take the values 3, 3, −1, −1 everywhere: their std is 2; got {_fmt(odd)}")
    return "population std per group (sample i in group i mod N/G), averaged over C, H, W, one extra channel"


@_exercise("9.3", "pixel norm", "pixel_norm")
def check_pixel_norm(c: _Checker, fn: Callable[[Tensor], Tensor]) -> str:
    """Check ``pixel_norm(x)`` = x / sqrt(mean over channels of x² + 1e-8): every pixel's feature vector ends with
    RMS 1 over the channels, keeps its direction, and an all-zero input stays finite.
    """
    x = torch.randn(3, 16, 4, 4, dtype=F64) * 50 * torch.rand(3, 1, 4, 4, dtype=F64)
    out = c.tensor(c.call(fn, x), "your output", shape=x.shape).detach().double()
    rms = out.pow(2).mean(dim=1).sqrt()
    if not _close(rms, torch.ones_like(rms), atol=1e-6):
        if _close(rms, torch.full_like(rms, 0.25), atol=1e-6):
            c.fail("each pixel's vector ended with RMS 1/4 = 1/√C: you divided by its L2 norm. Pixel norm divides by "
                   "the "
                   "root *mean* square over the channels, sqrt(mean_c x² + ε)")
        spatial = out.pow(2).mean(dim=(2, 3)).sqrt()
        if _close(spatial, torch.ones_like(spatial), atol=1e-6):
            c.fail("you normalised each channel over the spatial positions (H, W): pixel norm normalises each pixel's "
                   "feature vector over the channels, dim=1")
        whole = out.pow(2).mean(dim=(1, 2, 3)).sqrt()
        if _close(whole, torch.ones_like(whole), atol=1e-6):
            c.fail("you normalised over the whole sample (C, H, W): pixel norm normalises each pixel separately, over "
                   "the channels only (dim=1)")
        c.fail(f"after pixel norm every pixel's feature vector should have RMS 1 over the channels; yours: {_fmt(rms)}")
    ratio = out / x
    if float(((ratio - ratio[:, :1]) / ratio[:, :1]).abs().max()) > 1e-9:
        c.fail("each pixel's vector must only be rescaled (one factor for all its channels), not changed in direction")
    zero = c.tensor(c.call(fn, torch.zeros(2, 4, 2, 2, dtype=F64)), "pixel_norm(0)", shape=(2, 4, 2, 2), finite=False)
    if not bool(torch.isfinite(zero).all()):
        c.fail("an all-zero input gave nan (0/0): add ε = 1e-8 under the square root")
    return "RMS 1 over channels at every pixel, direction kept, finite at 0"


# --- chapter 10: StyleGAN ----------------------------------------------------------------------------

@_exercise("10.1", "AdaIN, per sample and per channel", "adain_from_scratch")
def check_adain(c: _Checker, fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> str:
    """Check ``adain_from_scratch(x, y_scale, y_bias)`` = (y_s + 1) (x - μ)/σ + y_b with μ, σ (population, ε = 1e-8
    under the root) over the spatial positions of each channel of each sample.

    The output of every (sample, channel) must have mean y_b and std |y_s + 1|; changing one sample must not move
    another's output (BatchNorm would).
    """
    n, ch = 4, 3
    x = torch.randn(n, ch, 4, 4, dtype=F64) * torch.tensor([0.5, 3.0, 10.0], dtype=F64)[None, :, None, None] + 2.0
    y_s, y_b = torch.randn(n, ch, dtype=F64), torch.randn(n, ch, dtype=F64)
    out = c.tensor(c.call(fn, x, y_s, y_b), "your output", shape=x.shape).detach().double()
    mean, std = out.mean(dim=(2, 3)), out.std(dim=(2, 3), unbiased=False)
    x2 = x.clone()
    x2[1] = x2[1] * 10 + 5
    out2 = c.tensor(c.call(fn, x2, y_s, y_b), "your output", shape=x.shape).detach().double()
    if not _close(out2[0], out[0], atol=1e-6):
        c.fail("changing sample 1 changed sample 0's output: you took the statistics over the batch, as BatchNorm "
               "does. "
               "AdaIN normalises each sample on its own: mean and std over dims (2, 3) only")
    if not _close(mean, y_b, atol=1e-6):
        c.fail("each channel of each sample should come out with mean y_b; yours does not — did you take μ and σ over "
               "the channels too (dims 1, 2, 3, like LayerNorm)? AdaIN uses each channel's own statistics, dims (2, 3)")
    if _close(std, y_s.abs(), atol=1e-4):
        c.fail("each channel came out with std |y_s|: in this course's convention (the official code's) the scale is "
               "y_s + 1, so that a zero style leaves the features as they are")
    hw = 16
    if _close(std, (y_s + 1).abs() * math.sqrt((hw - 1) / hw), atol=1e-4):
        c.fail("each channel came out with std |y_s + 1| · √(15/16): you divided by the unbiased std (torch.std's "
               "default, "
               "÷ (HW − 1)). AdaIN uses the population std: x.var(dim=(2, 3), unbiased=False)")
    if not _close(std, (y_s + 1).abs(), atol=1e-4):
        c.fail(f"each channel of each sample should come out with std |y_s + 1|; yours: {_fmt(std)} vs "
               f"{_fmt((y_s + 1).abs())}")
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    expected = (x - mu) / torch.sqrt(var + 1e-8) * (y_s[:, :, None, None] + 1) + y_b[:, :, None, None]
    if not _close(out, expected, atol=1e-4):
        c.fail("the statistics are right but the values are not (x − μ)/σ · (y_s + 1) + y_b: keep each value's place")
    return "each (sample, channel) comes out with mean y_b and std |y_s + 1|, samples independent"


@_exercise("10.2", "the truncation trick, optionally on the first layers only", "truncate_styles")
def check_truncate_styles(c: _Checker, fn: Callable[..., Tensor]) -> str:
    """Check ``truncate_styles(ws, w_avg, psi, cutoff=None)``: w' = w̄ + ψ (w - w̄) on layers < cutoff (all when None).

    ψ = 1 is the identity, ψ = 0 gives w̄ everywhere; layers from ``cutoff`` on are left alone; ws unchanged.
    """
    n, layers, dim = 3, 5, 4
    ws = torch.randn(n, layers, dim, dtype=F64)
    w_avg = torch.randn(dim, dtype=F64)
    ws_before = ws.clone()
    out = c.tensor(c.call(fn, ws, w_avg, 0.7), "your styles", shape=ws.shape).detach().double()
    if not torch.equal(ws, ws_before):
        c.fail("you changed the input ws in place: return a new tensor (ws.clone() first, or torch.where)")
    expected = w_avg + 0.7 * (ws - w_avg)
    if not _close(out, expected):
        if _close(out, 0.7 * ws):
            c.fail("you pulled w towards 0 rather than towards the average w̄: w' = w̄ + ψ (w − w̄)")
        if _close(out, ws + 0.7 * (w_avg - ws)):
            c.fail("ψ is the fraction of the distance from w̄ that is *kept*: w' = w̄ + ψ (w − w̄), so ψ = 1 is the "
                   "identity; yours moves w a fraction ψ towards w̄")
        c.fail("w' should be w̄ + ψ (w − w̄) on every layer when cutoff is None")
    for psi, want, text in ((1.0, ws, "ψ = 1 must leave every w unchanged"),
                            (0.0, w_avg.expand_as(ws), "ψ = 0 must give every sample the average w̄")):
        got = c.tensor(c.call(fn, ws, w_avg, psi), "your styles", shape=ws.shape)
        if not _close(got, want):
            c.fail(text)
    cut = c.tensor(c.call(fn, ws, w_avg, 0.5, cutoff=2), "your styles", shape=ws.shape).detach().double()
    coarse, fine = cut[:, :2], cut[:, 2:]
    if _close(coarse, ws[:, :2]) and _close(fine, w_avg + 0.5 * (ws[:, 2:] - w_avg)):
        c.fail("you truncated the layers from the cutoff on: a cutoff truncates the coarse layers *below* it "
               "(the paper's first 8), and leaves the fine ones alone")
    if _close(cut[:, 2], w_avg + 0.5 * (ws[:, 2] - w_avg)) and _close(cut[:, 3:], ws[:, 3:]):
        c.fail("with cutoff = 2 you also truncated layer 2: only layers 0 and 1 (layer < cutoff) are truncated")
    if not (_close(coarse, w_avg + 0.5 * (ws[:, :2] - w_avg)) and _close(fine, ws[:, 2:])):
        c.fail("with cutoff = 2 layers 0 and 1 should be truncated and layers 2–4 left as they are")
    return "w̄ + ψ (w − w̄) on the layers below the cutoff, input untouched"


@_exercise("10.3", "style mixing with a crossover mask", "mix_styles")
def check_mix_styles(c: _Checker, fn: Callable[[Tensor, Tensor, int, int], Tensor]) -> str:
    """Check ``mix_styles(w1, w2, n_layers, crossover)`` returns (N, n_layers, w_dim) with the layers < crossover
    taking w1 and the layers >= crossover taking w2; crossover 0 is all w2, crossover n_layers all w1.
    """
    n, layers, dim = 3, 6, 4
    w1, w2 = torch.randn(n, dim, dtype=F64), torch.randn(n, dim, dtype=F64)
    shape = (n, layers, dim)

    def run(cross: int) -> Tensor:
        out = c.call(fn, w1, w2, layers, cross)
        if isinstance(out, Tensor) and tuple(out.shape) == (layers, n, dim):
            c.fail(f"your styles have shape {tuple(out.shape)}, layers first: the generator wants (N, n_layers, "
                   f"w_dim) = {shape}")
        return c.tensor(out, "your styles", shape=shape).detach().double()

    out = run(2)
    source = []
    for layer in range(layers):
        if _close(out[:, layer], w1):
            source.append("w1")
        elif _close(out[:, layer], w2):
            source.append("w2")
        else:
            source.append("?")
    want = ["w1"] * 2 + ["w2"] * (layers - 2)
    if source != want:
        if source == ["w2"] * 2 + ["w1"] * (layers - 2):
            c.fail("swapped: the layers below the crossover (the coarse ones) take w1, the layers from the crossover "
                   "on "
                   "take w2")
        if source == ["w1"] * 3 + ["w2"] * (layers - 3):
            c.fail("off by one: with crossover 2, layer 2 itself already takes w2 (layers ≥ crossover)")
        if source == ["w1"] + ["w2"] * (layers - 1):
            c.fail("off by one: with crossover 2, layers 0 and 1 take w1 (layers < crossover)")
        if "?" in source:
            c.fail(f"layer {source.index('?')} is neither w1 nor w2: every layer copies one of the two styles")
        c.fail(f"with crossover 2 of {layers} layers, the layers should come from {want}; yours from {source}")
    if not _close(run(0), w2[:, None].expand(shape)):
        c.fail("crossover 0 means every layer takes w2")
    if not _close(run(layers), w1[:, None].expand(shape)):
        c.fail(f"crossover {layers} (= n_layers) means no mixing: every layer takes w1")
    return "layers < crossover from w1, the rest from w2, shape (N, L, w_dim)"
