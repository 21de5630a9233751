"""Chapter 09's harness (ganlib.experiments.growing): phases run in order, the cadence, branches, and the scores."""
import math

import pytest
import torch

from ganlib.checkpoint import load_checkpoint
from ganlib.data import mnist
from ganlib.experiments.growing import (GrowRecipe, branch_abrupt, diversity, fit_phases, fresh_samples,
                                        full_size_fd, grow, last_before, peak_jump, resume_grown, stage_fd, window)
from ganlib.hooks import TimedEvaluate
from ganlib.metrics.classifier import predict
from ganlib.progressive import fade_reals

# 4 levels (4 -> 32 px), 2 steps per phase: stabilise 4x4 [0, 2), then fade / stabilise at 8, 16, 32 px
RECIPE = GrowRecipe(z_dim=8, channels=(8, 4, 4, 4), steps=2, final=3, batch=4, ema=0.9, n_critic=1, eval_every=2,
                    n_eval=16)


@pytest.fixture(scope="module")
def digits():
    x, _ = mnist(size=32)
    held, _ = mnist(size=32, split="heldout")
    return x[:64], held[:64]


class _Fixed:
    """Stands in for a Trainer: ``sample(n)`` returns the first n of fixed images; G reports a stage."""

    def __init__(self, images, stage=(3, 1.0)):
        self.images, self.asked = images, []
        self.G = type("G", (), {"stage": stage})()

    def sample(self, n):
        self.asked.append(n)
        return self.images[:n]


def test_recipe_schedule_boundaries_by_hand():
    # 4x4 stabilise 2 steps; each larger level fades 2 and stabilises 2: boundaries at 0, 2, 4, ..., 12
    assert RECIPE.schedule().phase_boundaries() == [
        (0, "stabilize", 4), (2, "fade", 8), (4, "stabilize", 8), (6, "fade", 16), (8, "stabilize", 16),
        (10, "fade", 32), (12, "stabilize", 32)]
    assert RECIPE.schedule().total_steps == 14 and RECIPE.resolution == 32


def test_grow_runs_every_phase_in_order_on_the_cadence(digits):
    x, held = digits
    trainer, evaluate, snaps = grow(RECIPE, x, held, snapshot_kinds=("stabilize", "fade"), open_every=4)
    assert trainer.step == 14 + 3  # the schedule, then `final` more steps in the open 32x32 phase
    assert list(snaps) == [(4, "stabilize"), (8, "fade"), (8, "stabilize"), (16, "fade"), (16, "stabilize"),
                           (32, "fade"), (32, "stabilize")]
    assert all(s.shape == (8, 1, 32, 32) for s in snaps.values())
    # every 2 steps up to the schedule's end (14), every 4 after it (16), and the end of each fit (17)
    assert evaluate.records["step"] == [2, 4, 6, 8, 10, 12, 14, 16, 17]
    assert type(evaluate).__name__ == "Evaluate" and all(math.isfinite(v) for v in evaluate.records["fd"])
    _, plain, none = grow(RECIPE, x, held, until=(0, "stabilize"))
    assert plain.records["step"] == [2] and none == {}


def test_grow_is_reproduced_by_its_seed_and_branches_resume_its_checkpoint(digits, tmp_path):
    x, held = digits
    path = tmp_path / "end8.pt"
    a, eval_a, _ = grow(RECIPE, x, held, until=(1, "stabilize"), save=[((1, "stabilize"), path)])
    b, eval_b, _ = grow(RECIPE, x, held, until=(1, "stabilize"))
    assert a.step == b.step == 6 and load_checkpoint(path)["step"] == 6  # 4x4 (2) + 8x8 fade (2) + stabilise (2)
    assert eval_a.records == eval_b.records and a.history["g_loss"] == b.history["g_loss"]
    assert all(torch.equal(p, q) for p, q in zip(a.G.state_dict().values(), b.G.state_dict().values()))
    c, _, _ = grow(RECIPE, x, held, until=(1, "stabilize"), seed=1)
    assert c.history["g_loss"] != a.history["g_loss"]

    resumed = resume_grown(RECIPE, x, held, path)
    assert resumed.step == 6 and resumed.G.stage == a.G.stage
    assert all(torch.equal(p, q) for p, q in zip(a.G_ema.state_dict().values(), resumed.G_ema.state_dict().values()))

    abrupt, abrupt_eval = branch_abrupt(RECIPE, x, held, path, level=1, until_step=8)
    assert abrupt.step == 8 and abrupt.G.stage == (2, 1.0)  # 16x16 at once, no fade
    assert abrupt_eval.records["step"] == [2, 4, 6, 8]  # the main run's records, continued
    faded, _, _ = grow(RECIPE, x, held, until=(2, "fade"))
    assert faded.step == 8 and faded.G.stage[0] == 2 and faded.G.stage[1] < 1.0  # the main run is mid-fade there


def test_fit_phases_stops_after_until_and_rejects_a_phase_it_does_not_have(digits):
    x, held = digits
    trainer, _, _ = grow(RECIPE, x, held, until=(0, "stabilize"))
    with pytest.raises(ValueError, match="not a phase"):
        fit_phases(trainer, RECIPE.schedule(), until=(0, "fade"))


def test_stage_fd_scores_against_the_reals_at_gs_stage(digits):
    _, held = digits
    reals = held[:48]
    target = fade_reals(reals, 1, 0.5)  # 8x8 fading into 16x16, brought back to 32x32 as D sees it
    fake = _Fixed(target, stage=(1, 0.5))
    assert stage_fd(fake, reals)["fd"] == pytest.approx(0.0, abs=1e-3)  # samples = the staged reals: FD 0
    assert fake.asked == [48]
    assert full_size_fd(fake, reals)["fd"] > 1.0  # the same samples against the sharp digits are far off
    sharp = _Fixed(reals)
    scored = full_size_fd(sharp, reals, keep=5)
    assert scored["fd"] == pytest.approx(0.0, abs=1e-3) and torch.equal(scored["samples"], reals[:5])


def test_diversity_is_one_for_the_reals_and_zero_spread_for_a_collapsed_batch(digits):
    _, held = digits
    reals = held[:50]
    same = diversity(_Fixed(reals), reals)
    labels = predict(reals)
    p = torch.bincount(labels, minlength=10).double() / len(labels)
    kl = float(sum(q * math.log(q * 10) for q in p.tolist() if q > 0))
    assert same["KL to uniform"] == pytest.approx(kl)
    assert same["feature spread / real"] == pytest.approx(1.0) and same["FD"] == pytest.approx(0.0, abs=1e-3)
    collapsed = diversity(_Fixed(reals[:1].repeat(50, 1, 1, 1)), reals)
    assert collapsed["KL to uniform"] == pytest.approx(math.log(10))  # every sample the same digit
    assert collapsed["feature spread / real"] == pytest.approx(0.0, abs=1e-6)


def test_reading_the_curves_by_hand():
    history = {"step": [1, 2, 4, 5, 7, 9], "g_loss": [0.5, 1.0, 2.0, 6.0, 3.0, 9.0]}
    assert window(history, "g_loss", 2, 5) == ([2, 4, 5], [1.0, 2.0, 6.0])
    assert last_before(history, "g_loss", 3) == 1.0 and last_before(history, "g_loss", 4) == 2.0
    # switch at 3: base is the value at step 2 (1.0); within 4 steps (4, 5, 7) the peak is 6.0 -> +5.0
    assert peak_jump(history, 3, 4) == 5.0
    assert peak_jump(history, 4, 1) == 4.0  # base at 4 itself (2.0), only step 5 is within 1 step
    with pytest.raises(ValueError):
        last_before(history, "g_loss", 0)
    with pytest.raises(ValueError):
        peak_jump(history, 9, 3)


def test_fresh_samples_are_seeded_and_the_generator_is_untrained():
    x, G = fresh_samples(RECIPE, "transposed", seed=3, n=4)
    y, _ = fresh_samples(RECIPE, "transposed", seed=3, n=4)
    z, _ = fresh_samples(RECIPE, "transposed", seed=4, n=4)
    assert x.shape == (4, 1, 32, 32) and torch.equal(x, y) and not torch.equal(x, z)
    assert not G.training and G.stage == (3, 1.0)  # built at full size: the whole network draws


def test_timed_evaluate_is_what_grow_uses_with_a_clock(digits):
    x, held = digits
    trainer, evaluate, _ = grow(RECIPE, x, held, until=(0, "stabilize"), clock_at=0.0)
    assert isinstance(evaluate, TimedEvaluate) and evaluate.seconds > 0
    assert evaluate.result["step"] == 1 and set(evaluate.result) == {"step", "seconds", "fd", "samples"}
    assert evaluate.result["samples"].shape == (16, 1, 32, 32)  # n_eval samples, all kept (fewer than 32)
