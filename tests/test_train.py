"""The training loop: exact resume, the NaN guard, atomic checkpoints, n_critic, hooks, EMA."""
import os
import re
import signal

import pytest
import torch
from torch import nn

import ganlib
from ganlib import data, losses
from ganlib.models import MLPDiscriminator, MLPGenerator
from ganlib.checkpoint import CheckpointError, DivergenceError, load_checkpoint
from ganlib.hooks import Evaluate, Hook, WeightClip
from ganlib.train import Trainer


def make_trainer(tmp_path=None, seed=0, **kwargs):
    ganlib.seed_everything(seed)
    mix = data.toy("ring")
    G = MLPGenerator(z_dim=2, hidden=16, depth=2, batchnorm=True)
    D = MLPDiscriminator(hidden=16, depth=2)
    defaults = dict(d_loss=lambda r, f: losses.discriminator_bce(r, f, losses.soft_noisy_labels(len(r), True),
                                                                   losses.soft_noisy_labels(len(f), False)),
                    g_loss=losses.generator_nonsaturating,
                    d_penalty=lambda D, real, fake, y: 0.1 * losses.gradient_penalty(D, real, fake),
                    ema_decay=0.9, n_critic=2, log_every=3, progress=False, device=torch.device("cpu"))
    defaults.update(kwargs)
    if tmp_path is not None:
        defaults["checkpoint_path"] = tmp_path / "ckpt.pt"
    return Trainer(G, D, data.SamplerSource(mix.sample, 32, seed=seed), **defaults)


def params(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    straight = make_trainer()
    straight.fit(12)

    first = make_trainer(tmp_path)
    first.fit(5)
    torch.randn(100)  # disturb the global RNG: resume must restore it
    resumed = make_trainer(tmp_path, seed=123)  # different init, different data seed object
    resumed.data = first.data
    resumed.resume(tmp_path / "ckpt.pt")
    resumed.fit(12)

    assert resumed.step == straight.step == 12
    assert torch.equal(params(resumed.G), params(straight.G))
    assert torch.equal(params(resumed.D), params(straight.D))
    assert torch.equal(params(resumed.G_ema), params(straight.G_ema))
    # The interrupted run also logged its last step (5); every step both runs logged agrees exactly.
    logged = dict(zip(resumed.history["step"], resumed.history["g_loss"]))
    assert set(straight.history["step"]) <= set(logged)
    assert all(logged[s] == v for s, v in zip(straight.history["step"], straight.history["g_loss"]))


def test_nan_guard_names_step_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def d_loss(real, fake):
        calls["n"] += 1
        loss = losses.discriminator_bce(real, fake)
        return loss * float("nan") if calls["n"] > 6 else loss  # 2 critic steps per step: NaN at step 3

    trainer = make_trainer(tmp_path, d_loss=d_loss, checkpoint_every=1)
    with pytest.raises(DivergenceError, match=r"discriminator loss became nan at step 3.*ckpt.pt \(step 3\)"):
        trainer.fit(10)
    state = load_checkpoint(tmp_path / "ckpt.pt")
    assert state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["G"].values())


def test_half_written_checkpoint_never_replaces_a_good_one(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path)
    trainer.fit(2)
    path = tmp_path / "ckpt.pt"
    good = path.read_bytes()

    def crash_midway(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        trainer.fit(4)
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]  # no temporary file left behind


def test_truncated_and_foreign_checkpoints_are_clear_errors(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.fit(1)
    path = tmp_path / "ckpt.pt"
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated"):
        make_trainer().resume(truncated)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a ganlib-checkpoint"):
        make_trainer().resume(tmp_path / "other.pt")
    bigger = make_trainer()
    bigger.G = MLPGenerator(z_dim=2, hidden=32, depth=2, batchnorm=True)
    with pytest.raises(CheckpointError, match="does not fit"):
        bigger.resume(path)
    other_kind = make_trainer()
    other_kind.D = nn.Sequential(nn.Linear(2, 1))
    with pytest.raises(CheckpointError, match="holds a MLPDiscriminator"):
        other_kind.resume(path)
    with pytest.raises(FileNotFoundError):
        make_trainer().resume(tmp_path / "missing.pt")


class Counter(Hook):
    def __init__(self):
        self.d_steps, self.starts, self.value = 0, [], 0

    def on_step_start(self, trainer, step):
        self.starts.append(step)

    def on_d_step_end(self, trainer):
        self.d_steps += 1

    def state_dict(self):
        return {"d_steps": self.d_steps}

    def load_state_dict(self, state):
        self.d_steps = state["d_steps"]


class Steps(Hook):
    def __init__(self):
        self.seen = []

    def on_step_start(self, trainer, step):
        self.seen.append(("start", step, trainer.step))

    def on_step_end(self, trainer, step, logs):
        self.seen.append(("end", step, trainer.step))


def test_hooks_see_the_trainers_step_and_evaluate_has_one_cadence():
    steps = Steps()
    every3 = Evaluate(lambda tr: {"n": tr.step}, every=3)
    sparser = Evaluate(lambda tr: {}, every=lambda step: 2 if step <= 4 else 5)
    no_end = Evaluate(lambda tr: {}, every=3, at_end=False)
    trainer = make_trainer(n_critic=1, hooks=[steps, every3, sparser, no_end])
    trainer.fit(7)
    assert steps.seen[:4] == [("start", 0, 0), ("end", 1, 1), ("start", 1, 1), ("end", 2, 2)]
    assert every3.records == {"step": [3, 6, 7], "n": [3.0, 6.0, 7.0]}  # multiples of 3, then the end of fit
    assert every3.rows == [{"step": 3, "n": 3.0}, {"step": 6, "n": 6.0}, {"step": 7, "n": 7.0}]
    assert sparser.records["step"] == [2, 4, 5, 7] and no_end.records["step"] == [3, 6]
    trainer.fit(9)
    assert every3.records["step"] == [3, 6, 7, 9]  # the end of the second fit is a multiple: recorded once
    with pytest.raises(ValueError, match="every"):
        Evaluate(lambda tr: {}, every=0)


def test_mode_tracker_and_w1_probe_are_evaluates_on_the_same_cadence():
    from ganlib.experiments.toy import ModeTracker, W1Probe, ToyConfig, build
    ring = data.toy("ring")
    tracker, probe = ModeTracker(ring, every=4, n=200), W1Probe(ring, every=4, n=32)
    trainer = build(ToyConfig(loss="wgan_gp", steps=10, hidden=16, depth=2, batch_size=32), (tracker, probe))
    trainer.fit(10)
    assert isinstance(tracker, Evaluate) and isinstance(probe, Evaluate)
    assert [r["step"] for r in tracker.rows] == [4, 8]                # no extra row at the end of fit
    assert [r["step"] for r in probe.rows] == [1, 4, 8]               # and the probe starts after step 1
    assert set(probe.rows[0]) == {"step", "critic", "w1", "w1_real_real"}
    tracker.load_state_dict({})  # a checkpoint from before ModeTracker kept records: nothing is lost
    assert len(tracker.rows) == 2


def test_n_critic_schedule_and_hooks():
    counter = Counter()
    trainer = make_trainer(n_critic=lambda step: 3 if step == 0 else 1, hooks=[counter])
    trainer.fit(4)
    assert counter.starts == [0, 1, 2, 3]
    assert counter.d_steps == trainer.d_steps == 3 + 1 + 1 + 1
    assert trainer.batches_drawn == 6
    with pytest.raises(ValueError, match="n_critic"):
        make_trainer(n_critic=0)


def test_lazy_penalty_runs_every_k_d_steps_scaled_by_k():
    seen = []

    def penalty(D, real, fake, y):
        seen.append(1)
        return torch.zeros((), requires_grad=True)

    make_trainer(d_penalty=penalty, d_penalty_every=4, n_critic=1).fit(12)
    assert len(seen) == 3


def test_weight_clip_hook_keeps_critic_in_bounds():
    trainer = make_trainer(d_loss=losses.critic_wasserstein, g_loss=losses.generator_wasserstein,
                           d_penalty=None, hooks=[WeightClip(0.01)], lr=1e-2)
    trainer.fit(5)
    assert all(p.abs().max() <= 0.01 + 1e-9 for p in trainer.D.parameters())


def test_ema_after_one_step_is_the_convex_combination():
    trainer = make_trainer(ema_decay=0.75, n_critic=1, d_penalty=None)
    before = params(trainer.G).clone()
    trainer.fit(1)
    after = params(trainer.G)
    assert torch.allclose(params(trainer.G_ema), 0.75 * before + 0.25 * after, atol=1e-7)


class LabelledG(nn.Module):
    z_dim = 2

    def __init__(self):
        super().__init__()
        self.lin, self.seen = nn.Linear(2 + 3, 4), []

    def forward(self, z, y):
        self.seen.append(y.clone())
        return self.lin(torch.cat([z, nn.functional.one_hot(y, 3).float()], 1))


class LabelledD(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4 + 3, 1)

    def forward(self, x, y):
        return self.lin(torch.cat([x, nn.functional.one_hot(y, 3).float()], 1))[:, 0]


def test_conditional_batches_reach_both_networks():
    x, y = torch.randn(30, 4), torch.arange(30) % 3
    G, D = LabelledG(), LabelledD()
    Trainer(G, D, data.TensorSource(x, y, batch_size=6), d_loss=losses.discriminator_bce,
            g_loss=losses.generator_nonsaturating, progress=False, device=torch.device("cpu")).fit(3)
    assert all(len(labels) == 6 and labels.max() < 3 for labels in G.seen)


def test_reset_optimizers_forgets_adam_state():
    trainer = make_trainer()
    trainer.fit(2)
    assert trainer.g_opt.state
    lr = trainer.g_opt.param_groups[0]["lr"]
    trainer.reset_optimizers()
    assert not trainer.g_opt.state and trainer.g_opt.param_groups[0]["lr"] == lr


def test_an_optimizer_factory_builds_both_and_rebuilds_them_on_reset():
    made = []

    def sgd(net, role):
        made.append(role)
        return torch.optim.SGD(net.parameters(), lr=0.01 if role == "G" else 0.02)

    trainer = make_trainer(optimizer=sgd)
    trainer.fit(2)
    assert made == ["G", "D"] and isinstance(trainer.d_opt, torch.optim.SGD)
    assert (trainer.g_opt.param_groups[0]["lr"], trainer.d_opt.param_groups[0]["lr"]) == (0.01, 0.02)
    trainer.reset_optimizers()
    assert made == ["G", "D", "G", "D"]
    with pytest.raises(ValueError, match="not both"):
        make_trainer(optimizer=sgd, lr=1e-3)


def test_g_step_makes_a_source_sized_batch_and_d_step_hands_nothing_over():
    x, y = torch.randn(30, 4), torch.arange(30) % 3
    G = LabelledG()
    trainer = Trainer(G, LabelledD(), data.TensorSource(x, y, batch_size=6), d_loss=losses.discriminator_bce,
                      g_loss=losses.generator_nonsaturating, n_critic=2, progress=False, device=torch.device("cpu"))
    assert (trainer.batch_size, trainer.labelled) == (6, True)
    trainer.fit(2)
    assert [len(labels) for labels in G.seen] == [6] * 6  # 2 D steps + 1 G step, twice
    assert trainer.batches_drawn == 6 and trainer._kept_fakes is None  # G's labels: a real batch of its own


def test_history_is_logged_and_bad_arguments_are_clear():
    trainer = make_trainer()
    history = trainer.fit(7)
    assert history["step"] == [1, 3, 6, 7]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm", "d_penalty"} <= set(history)
    assert all(0 <= v <= 1 for v in history["d_real"])
    with pytest.raises(TypeError, match="batch source"):
        Trainer(MLPGenerator(), MLPDiscriminator(), [1, 2], d_loss=losses.discriminator_bce,
                g_loss=losses.generator_nonsaturating)
    with pytest.raises(ValueError, match="ema_decay"):
        make_trainer(ema_decay=1.5)
    with pytest.raises(ValueError, match="z_dim"):
        Trainer(nn.Linear(2, 2), MLPDiscriminator(), data.SamplerSource(data.toy("ring").sample, 4),
                d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating)


@pytest.mark.gpu
def test_training_step_on_cuda(monkeypatch):
    monkeypatch.setenv("GANLIB_DEVICE", "cuda")
    trainer = make_trainer(device=ganlib.device())
    trainer.fit(3)
    assert next(trainer.G.parameters()).is_cuda and trainer.step == 3


# -- nothing trained is lost; resume does what the user asked ----------------------------------------

def test_nan_advice_lower_the_lr_then_resume_works_end_to_end(tmp_path):
    make_trainer(tmp_path, checkpoint_every=3).fit(6)  # a healthy run at lr 2e-4 leaves a checkpoint
    diverging = make_trainer(tmp_path, lr=1e6, checkpoint_every=3)
    diverging.resume(tmp_path / "ckpt.pt")
    with pytest.raises(DivergenceError) as caught:
        diverging.fit(30)
    # Follow the message: the checkpoint it names, a new trainer with lower learning rates, resume.
    named = re.search(r"last good checkpoint is (\S+) \(step (\d+)\)", str(caught.value))
    assert named and "Lower the learning rates" in str(caught.value)
    fixed = make_trainer(tmp_path, lr=1e-4, betas=(0.0, 0.9))
    fixed.resume(named.group(1))
    assert fixed.step == int(named.group(2)) == 6
    for opt in (fixed.g_opt, fixed.d_opt):
        assert [(g["lr"], g["betas"]) for g in opt.param_groups] == [(1e-4, (0.0, 0.9))]
        assert all(s["step"] == (6 if opt is fixed.g_opt else 12) for s in opt.state.values())  # Adam state loaded
    fixed.fit(12)
    assert fixed.step == 12
    assert all(torch.isfinite(params(net)).all() for net in (fixed.G, fixed.D, fixed.G_ema))


def test_checkpoint_without_ema_starts_g_ema_from_the_loaded_g(tmp_path):
    make_trainer(tmp_path, ema_decay=None).fit(3)
    with_ema = make_trainer(ema_decay=0.9, seed=7)
    random_init = params(with_ema.G_ema).clone()
    with_ema.resume(tmp_path / "ckpt.pt")
    saved_g = torch.cat([v.flatten() for k, v in load_checkpoint(tmp_path / "ckpt.pt")["G"].items()
                         if k in dict(with_ema.G.named_parameters())])
    assert torch.equal(params(with_ema.G_ema), saved_g) and torch.equal(params(with_ema.G), saved_g)
    assert not torch.equal(params(with_ema.G_ema), random_init)


def test_checkpoint_with_ema_into_a_trainer_without_ignores_it_with_a_warning(tmp_path):
    saved = make_trainer(tmp_path, ema_decay=0.9)
    saved.fit(3)
    plain = make_trainer(ema_decay=None, seed=7)
    with pytest.warns(UserWarning, match="holds an EMA generator.*ema_decay=None.*ignored"):
        plain.resume(tmp_path / "ckpt.pt")
    assert plain.G_ema is None and torch.equal(params(plain.G), params(saved.G))


class InterruptAt(Hook):
    """Sends this process a real SIGINT (Ctrl-C) in the middle of step ``at``, after its first D step."""

    def __init__(self, at):
        self.at, self.sent = at, False

    def on_d_step_end(self, trainer):
        if trainer.step == self.at and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt", reason="POSIX signals")
def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(tmp_path):
    straight = make_trainer(hooks=[Hook()])
    straight.fit(9)
    interrupted = make_trainer(tmp_path, checkpoint_every=0, hooks=[InterruptAt(4)])
    with pytest.raises(KeyboardInterrupt, match=r"interrupted at step 5; saved to .*ckpt.pt"):
        interrupted.fit(9)
    assert interrupted.step == 5 and load_checkpoint(tmp_path / "ckpt.pt")["step"] == 5
    resumed = make_trainer(seed=3, hooks=[Hook()])
    resumed.data = interrupted.data
    resumed.resume(tmp_path / "ckpt.pt")
    resumed.fit(9)
    assert torch.equal(params(resumed.G), params(straight.G)) and torch.equal(params(resumed.D), params(straight.D))


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt", reason="POSIX signals")
def test_ctrl_c_without_a_path_keeps_the_trainer_whole_in_memory():
    straight = make_trainer(hooks=[Hook()])
    straight.fit(9)
    trainer = make_trainer(hooks=[InterruptAt(2)])
    with pytest.raises(KeyboardInterrupt, match=r"interrupted at step 3; the trainer and its models are in memory"):
        trainer.fit(9)
    assert trainer.step == 3
    trainer.fit(9)  # continue with the same trainer (a notebook's next cell), as if never interrupted
    assert torch.equal(params(trainer.G), params(straight.G))
    assert torch.isfinite(trainer.sample(5)).all()


def test_default_cadence_with_a_path_is_500_steps(tmp_path):
    from ganlib.checkpoint import DEFAULT_CHECKPOINT_EVERY
    assert DEFAULT_CHECKPOINT_EVERY == 500
    assert make_trainer(tmp_path).checkpoint_every == 500
    assert make_trainer().checkpoint_every == 0
    assert make_trainer(tmp_path, checkpoint_every=0).checkpoint_every == 0


def test_exploding_weights_never_become_the_last_good_checkpoint(tmp_path):
    from ganlib.checkpoint import MAX_ABS_WEIGHT
    trainer = make_trainer(tmp_path, lr=1e8, checkpoint_every=1, d_penalty=None, log_every=100)
    with pytest.raises(DivergenceError, match=r"not saving .*ckpt.pt after step \d+: .*reached .*over MAX_ABS_WEIGHT") as caught:
        trainer.fit(20)  # the losses are still finite here: it is the weights' check that stops the run
    assert "The last good checkpoint is" in str(caught.value)
    state = load_checkpoint(tmp_path / "ckpt.pt")
    for net in ("G", "D", "G_ema"):
        assert all(v.abs().max() <= MAX_ABS_WEIGHT for v in state[net].values() if v.is_floating_point())


def test_divergence_without_a_path_keeps_the_last_finite_state_in_memory():
    trainer = make_trainer(lr=1e8, d_penalty=None, log_every=2)
    with pytest.raises(DivergenceError, match=r"kept in memory.*last_finite_state") as caught:
        trainer.fit(20)
    kept = trainer.last_finite_state
    assert f"(step {kept['step']})" in str(caught.value)
    again = make_trainer(lr=1e-4)
    again.load_state_dict(kept)
    assert again.step == kept["step"] and again.g_opt.param_groups[0]["lr"] == 1e-4
    again.fit(again.step + 3)
    assert torch.isfinite(params(again.G)).all()


def test_linear_lr_decay_decays_from_the_resumed_trainers_own_lr(tmp_path):
    from ganlib.experiments.toy import LinearLrDecay
    make_trainer(tmp_path, lr=1e-3, hooks=[LinearLrDecay(total=10, fraction=1.0)]).fit(5)
    resumed = make_trainer(lr=1e-4, hooks=[LinearLrDecay(total=10, fraction=1.0)])
    resumed.resume(tmp_path / "ckpt.pt")
    resumed.fit(6)  # lr of step 5 = base * (1 - 0.99 * 5 / 10), from the new base 1e-4, not the saved 1e-3
    assert resumed.g_opt.param_groups[0]["lr"] == pytest.approx(1e-4 * (1 - 0.99 * 0.5))


def test_timed_evaluate_counts_only_training_time_and_fires_once():
    from ganlib.hooks import TimedEvaluate

    clock = {"t": 0.0}
    order = []

    class Tick(Hook):  # each D step "takes" 1 s of training
        def on_d_step_end(self, trainer):
            clock["t"] += 1.0

    def slow_eval(tr):  # evaluations and the one-off score "take" far longer: none of it may count
        order.append(("eval", tr.step))
        clock["t"] += 100.0
        return {"n": tr.step}

    def once(tr):
        order.append(("once", tr.step))
        clock["t"] += 1000.0
        return {"score": 42.0}

    timed = TimedEvaluate(slow_eval, every=3, at=2.5, once=once, clock=lambda: clock["t"])
    plain = Evaluate(lambda tr: {"n": tr.step}, every=3)
    trainer = make_trainer(n_critic=1, hooks=[Tick(), timed, plain])
    trainer.fit(7)
    assert timed.seconds == 7.0  # one second per step, the 3 evaluations and the one-off excluded
    assert timed.result == {"step": 3, "seconds": 3.0, "score": 42.0}  # the first step with >= 2.5 s
    assert order == [("once", 3), ("eval", 3), ("eval", 6), ("eval", 7)]  # once, before that step's evaluation
    assert timed.records == plain.records  # Evaluate's cadence and records, unchanged
    assert timed.state_dict() == plain.state_dict()  # checkpoints move between the two
    trainer.fit(9)
    assert timed.seconds == 9.0 and [o for o in order if o[0] == "once"] == [("once", 3)]
    untimed = TimedEvaluate(lambda tr: {}, every=2)
    with pytest.raises(ValueError, match="both"):
        TimedEvaluate(lambda tr: {}, every=2, at=1.0)
    assert untimed.result is None


def test_timed_evaluates_one_off_score_leaves_the_training_random_stream_alone():
    # `once` fires at a moment set by the wall clock; drawing its samples from the global RNG would shift every
    # later latent and D batch, so the rest of a run would depend on how fast the machine was
    from ganlib.hooks import TimedEvaluate

    def weights_after_training(once):
        torch.manual_seed(0)
        hooks = [TimedEvaluate(lambda tr: {}, every=100, at=0.0, once=once)] if once else []
        trainer = make_trainer(n_critic=1, hooks=hooks)
        trainer.fit(4)
        return [p.detach().clone() for p in trainer.G.parameters()]

    untouched = weights_after_training(None)
    drawing = weights_after_training(lambda tr: {"draw": float(torch.randn(1000).sum())})
    assert all(torch.equal(a, b) for a, b in zip(untouched, drawing))
