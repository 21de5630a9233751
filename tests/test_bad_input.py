"""Bad inputs through the public API: each must fail loudly, naming what was wrong, and never corrupt silently.

The checkpoint cases end with the one that matters most: a writer killed with SIGKILL at random moments
always leaves a loadable checkpoint, and the next save cleans up after it.
"""
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import ganlib
from ganlib import checkpoint, data, losses
from ganlib.data import downloads
from ganlib.metrics import exact_w1, frechet_distance_from_stats, mode_stats
from ganlib.models import MLPDiscriminator, MLPGenerator
from ganlib.checkpoint import CheckpointError, DivergenceError, load_checkpoint
from ganlib.hooks import Evaluate
from ganlib.train import Trainer


def make_trainer(path=None, hidden=16, depth=2, **kwargs):
    ganlib.seed_everything(0)
    G = MLPGenerator(z_dim=2, hidden=hidden, depth=depth)
    D = MLPDiscriminator(hidden=16, depth=2)
    settings = dict(d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating, ema_decay=0.9,
                    progress=False, device=torch.device("cpu"), checkpoint_path=path)
    settings.update(kwargs)
    return Trainer(G, D, data.SamplerSource(data.toy("ring").sample, 16, seed=0), **settings)


def snapshot(trainer):
    """Everything a failed resume must leave exactly as it was."""
    return {"G": [t.clone() for t in trainer.G.state_dict().values()],
            "D": [t.clone() for t in trainer.D.state_dict().values()],
            "G_ema": [t.clone() for t in trainer.G_ema.state_dict().values()],
            "g_opt": repr(trainer.g_opt.state_dict()), "d_opt": repr(trainer.d_opt.state_dict()),
            "counters": (trainer.step, trainer.d_steps, trainer.batches_drawn), "history": repr(dict(trainer.history)),
            "rng": torch.get_rng_state().clone()}


def assert_same(a, b):
    for key in a:
        if isinstance(a[key], list):
            assert all(torch.equal(x, y) for x, y in zip(a[key], b[key])), key
        elif torch.is_tensor(a[key]):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A real checkpoint after 2 steps, and its bytes."""
    path = tmp_path_factory.mktemp("good") / "ckpt.pt"
    make_trainer(path).fit(2)
    return path, path.read_bytes()


# -- checkpoint files ------------------------------------------------------------------------------

def test_empty_checkpoint_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pt is empty \(0 bytes\).*delete it"):
        load_checkpoint(path)


def test_every_truncation_point_is_a_checkpoint_error_naming_the_file(tmp_path, good):
    _, blob = good
    cuts = sorted(set(range(0, 120)) | set(range(120, len(blob), max(1, len(blob) // 150))) | {len(blob) - 1})
    path = tmp_path / "cut.pt"
    for cut in cuts:
        path.write_bytes(blob[:cut])
        with pytest.raises(CheckpointError, match=r"cut.pt is (empty|truncated)"):
            load_checkpoint(path)


@pytest.mark.parametrize("where", ["payload start", "middle", "last byte"])
def test_a_flipped_byte_in_the_payload_fails_the_checksum(tmp_path, good, where):
    _, blob = good
    index = {"payload start": blob.index(b"\n", len(checkpoint.MAGIC)) + 1, "middle": len(blob) // 2,
             "last byte": len(blob) - 1}[where]
    damaged = bytearray(blob)
    damaged[index] ^= 0x01
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match=r"flipped.pt is corrupt: its sha256 checksum does not match"):
        load_checkpoint(path)


def test_a_flipped_byte_in_the_header(tmp_path, good):
    _, blob = good
    damaged = bytearray(blob)
    damaged[len(checkpoint.MAGIC) + 3] ^= 0x20  # inside "sha256="
    (tmp_path / "header.pt").write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match=r"header.pt is truncated or corrupt: its header line is damaged"):
        load_checkpoint(tmp_path / "header.pt")


def test_foreign_plain_pickle(tmp_path):
    with open(tmp_path / "foreign.pkl", "wb") as fh:
        pickle.dump({"weights": [1, 2, 3]}, fh)
    with pytest.raises(CheckpointError, match=r"foreign.pkl is not a ganlib-checkpoint file"):
        load_checkpoint(tmp_path / "foreign.pkl")


def test_foreign_torch_file(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other.pt is not a ganlib-checkpoint file"):
        load_checkpoint(tmp_path / "other.pt")


def test_torch_file_holding_a_whole_module_is_refused_without_running_it(tmp_path):
    torch.save(nn.Linear(2, 2), tmp_path / "module.pt")  # unpickling it would need arbitrary code
    with pytest.raises(CheckpointError, match=r"module.pt is corrupt or not a ganlib-checkpoint file: its pickle holds Python objects"):
        load_checkpoint(tmp_path / "module.pt")


def test_checkpoint_of_another_model_class(good):
    path, _ = good
    trainer = make_trainer()
    trainer.D = nn.Sequential(nn.Linear(2, 1))
    with pytest.raises(CheckpointError, match=r"ckpt.pt holds a MLPDiscriminator as D, but this trainer has a Sequential"):
        trainer.resume(path)


def test_checkpoint_of_another_width_leaves_the_trainer_exactly_as_it_was(good):
    path, _ = good
    trainer = make_trainer(hidden=32)  # D fits, G does not
    trainer.fit(1)
    before = snapshot(trainer)
    with pytest.raises(CheckpointError, match=r"ckpt.pt does not fit this trainer's G \(MLPGenerator\).*size"):
        trainer.resume(path)
    assert_same(before, snapshot(trainer))


def test_failed_resume_half_way_g_fits_d_does_not(good):
    path, _ = good
    trainer = make_trainer()
    trainer.D = MLPDiscriminator(hidden=8, depth=2)
    trainer.d_opt = torch.optim.Adam(trainer.D.parameters())
    trainer.fit(1)
    before = snapshot(trainer)
    with pytest.raises(CheckpointError, match=r"does not fit this trainer's D"):
        trainer.resume(path)
    assert_same(before, snapshot(trainer))  # G was loadable, but is untouched too


def test_checkpoint_missing_top_level_keys(tmp_path, good):
    path, _ = good
    state = load_checkpoint(path)
    del state["G"], state["rng"]
    checkpoint.save_checkpoint(state, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"partial.pt lacks G, rng"):
        load_checkpoint(tmp_path / "partial.pt")


def test_checkpoint_missing_weights_inside_g(tmp_path, good):
    path, _ = good
    state = load_checkpoint(path)
    state["G"].pop(next(iter(state["G"])))
    checkpoint.save_checkpoint(state, tmp_path / "no_weight.pt")
    with pytest.raises(CheckpointError, match=r"no_weight.pt does not fit this trainer's G .*Missing key"):
        make_trainer().resume(tmp_path / "no_weight.pt")


def test_checkpoint_from_another_optimizer(tmp_path):
    make_trainer(tmp_path / "adam.pt").fit(1)
    trainer = make_trainer()
    trainer.g_opt = torch.optim.RMSprop(trainer.G.parameters())
    with pytest.raises(CheckpointError, match=r"adam.pt holds a Adam as g_opt, but this trainer has a RMSprop"):
        trainer.resume(tmp_path / "adam.pt")


def test_checkpoint_with_other_hooks(good):
    path, _ = good
    with pytest.raises(CheckpointError, match=r"saved with 0 hooks, this trainer has 1"):
        make_trainer(hooks=[Evaluate(lambda t: {}, every=1)]).resume(path)


def test_checkpoint_holding_diverged_weights_is_refused(tmp_path, good):
    path, _ = good
    state = load_checkpoint(path)
    name = next(k for k, v in state["D"].items() if v.is_floating_point())
    state["D"][name] = torch.full_like(state["D"][name], float("nan"))
    checkpoint.save_checkpoint(state, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=rf"nan.pt holds a diverged state \(D's {name} is not finite"):
        make_trainer().resume(tmp_path / "nan.pt")


def test_a_folder_given_as_the_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=r"is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path)
    with pytest.raises(IsADirectoryError, match=r"is a folder; give a file path"):
        make_trainer().save(tmp_path)


def test_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*missing.pt"):
        make_trainer().resume(tmp_path / "missing.pt")


def test_version_1_files_still_load_and_truncated_ones_are_named(tmp_path, good):
    path, _ = good
    state = load_checkpoint(path)
    state["format"] = checkpoint.LEGACY_FORMAT
    del state["optimizers"]
    torch.save(state, tmp_path / "v1.pt")  # how version 1 wrote them: a bare torch zip, no header
    trainer = make_trainer().resume(tmp_path / "v1.pt")
    assert trainer.step == 2
    (tmp_path / "v1_cut.pt").write_bytes((tmp_path / "v1.pt").read_bytes()[:3000])
    with pytest.raises(CheckpointError, match=r"v1_cut.pt cannot be read: it is truncated"):
        load_checkpoint(tmp_path / "v1_cut.pt")


def test_save_refuses_exploded_weights_and_keeps_the_good_file(tmp_path):
    trainer = make_trainer(tmp_path / "ckpt.pt")
    trainer.fit(1)
    good_bytes = (tmp_path / "ckpt.pt").read_bytes()
    with torch.no_grad():
        trainer.G.net[0].weight[0, 0] = 3e7
    with pytest.raises(DivergenceError, match=r"not saving .*G's net.0.weight reached \|w\| = 3e\+07 \(over MAX_ABS_WEIGHT"):
        trainer.save(tmp_path / "ckpt.pt")
    assert (tmp_path / "ckpt.pt").read_bytes() == good_bytes


def test_stale_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".ckpt.pt.tmp-{int(dead.stdout)}"
    live = tmp_path / f".ckpt.pt.tmp-{os.getppid()}"  # our parent process is alive
    other = tmp_path / f".other.pt.tmp-{int(dead.stdout)}"  # another file's: not ours to touch
    for f in (stale, live, other):
        f.write_bytes(b"half a checkpoint")
    make_trainer().save(tmp_path / "ckpt.pt")
    assert not stale.exists() and live.exists() and other.exists()


@pytest.mark.parametrize("every", [-1, 2.5, True, "10"])
def test_nonsense_checkpoint_every(tmp_path, every):
    with pytest.raises(ValueError, match=rf"checkpoint_every must be a whole number of steps .*got {every!r}"):
        make_trainer(tmp_path / "ckpt.pt", checkpoint_every=every)


def test_checkpoint_every_without_a_path():
    with pytest.raises(ValueError, match=r"checkpoint_every=10 needs a checkpoint_path"):
        make_trainer(checkpoint_every=10)


# -- data ------------------------------------------------------------------------------------------

def test_16_bit_png_uses_its_full_range(tmp_path):
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    images = downloads.image_folder(tmp_path, size=32, channels=1)
    expected = torch.from_numpy(ramp / 65535.0 * 2 - 1).float()
    assert torch.allclose(images[0, 0], expected, atol=1e-5)
    assert (images > 0.99).float().mean() < 0.01  # the bug: 98 % of pixels clipped to white


def test_image_folder_given_a_file(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    with pytest.raises(NotADirectoryError, match=r"one.png is a file; pass the folder"):
        downloads.image_folder(tmp_path / "one.png")


def test_image_folder_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist"):
        downloads.image_folder(tmp_path / "nowhere")


def test_decompression_bomb_names_the_file(tmp_path, monkeypatch):
    Image.new("L", (64, 64)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 4096 pixels > 2 x limit: PIL refuses to decode
    with pytest.raises(ValueError, match=r"image .*bomb.png is too large to decode safely.*decompression bomb"):
        downloads.image_folder(tmp_path)


@pytest.mark.parametrize("size", [0, -4, 28.0])
def test_bad_image_size(tmp_path, size):
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    with pytest.raises(ValueError, match=rf"size must be a positive int .*got {size!r}"):
        downloads.image_folder(tmp_path, size=size)


def test_download_root_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"root .*file is a file, not a folder"):
        downloads.download("mnist", root=tmp_path / "file")


def _generators():
    from ganlib.models import cgan, dcgan, lapgan, pggan, stylegan
    return {"mlp": (MLPGenerator(z_dim=4), ()),
            "dcgan": (dcgan.Generator(z_dim=4, image_size=16, channels=1, width=8), ()),
            "cgan": (cgan.ConditionalGenerator(n_classes=3, z_dim=4, image_size=16, width=8), (torch.tensor([0, 1]),)),
            "pggan": (pggan.PGGANGenerator(z_dim=4, resolution=8, channels=(8, 8)), ()),
            "stylegan": (stylegan.StyleGenerator(z_dim=4, w_dim=4, mapping_depth=1, resolution=8, fmap_base=32,
                                                 fmap_max=8), ()),
            "lapgan-base": (lapgan.BaseGenerator(z_dim=4, hidden=8), ()),
            "lapgan-conv": (lapgan.ConvBaseGenerator(z_dim=4, width=4), ())}


@pytest.mark.parametrize("name", ["mlp", "dcgan", "cgan", "pggan", "stylegan", "lapgan-base", "lapgan-conv"])
def test_float64_z_is_named(name):
    net, extra = _generators()[name]
    z = torch.randn(2, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"got z of dtype torch.float64 but its weights are torch.float32"):
        net(z, *extra)
    assert torch.isfinite(net(z.float(), *extra)).all()  # the advice works


def test_z_that_is_not_a_tensor():
    with pytest.raises(TypeError, match=r"MLPGenerator expects z as a tensor of shape \(N, 2\), got ndarray"):
        MLPGenerator(z_dim=2)(np.zeros((3, 2)))


# -- losses and penalties --------------------------------------------------------------------------

@pytest.mark.parametrize("coding", [(1, 2), (1, 2, 3, 4), ("a", "b", "c")])
def test_lsgan_coding_of_the_wrong_kind(coding):
    with pytest.raises(ValueError, match=r"LSGAN coding must be a name .* or three numbers"):
        losses.discriminator_least_squares(torch.zeros(3), torch.zeros(3), coding)


def test_lsgan_coding_as_three_numbers_is_used():
    assert losses.generator_least_squares(torch.zeros(2), (0, 1, 3)).item() == pytest.approx(0.5 * 9)


def critic(x):
    return x.flatten(1).sum(1)


@pytest.mark.parametrize("penalty", ["gradient_penalty", "r1_penalty"])
def test_empty_batch_to_a_penalty(penalty):
    empty = torch.zeros(0, 2)
    args = (empty, empty) if penalty == "gradient_penalty" else (empty,)
    with pytest.raises(ValueError, match=rf"{penalty}: real is an empty batch"):
        getattr(losses, penalty)(critic, *args)


@pytest.mark.parametrize("penalty", ["gradient_penalty", "r1_penalty"])
def test_integer_batch_to_a_penalty(penalty):
    ints = torch.ones(4, 2, dtype=torch.int64)
    args = (ints, ints) if penalty == "gradient_penalty" else (ints,)
    with pytest.raises(TypeError, match=r"real has dtype torch.int64.*convert it with .float\(\)"):
        getattr(losses, penalty)(critic, *args)


def test_nan_passes_through_the_losses_and_the_trainer_guard_stops_it():
    nan = torch.tensor([float("nan"), 0.0])
    assert torch.isnan(losses.discriminator_bce(nan, torch.zeros(2)))  # documented: no check per call
    trainer = make_trainer(d_loss=lambda r, f: losses.discriminator_bce(r * float("nan"), f))
    with pytest.raises(DivergenceError, match=r"discriminator loss became nan at step 0"):
        trainer.fit(3)


# -- metrics ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_exact_w1_with_a_non_finite_point(bad):
    x, y = torch.zeros(5, 2), torch.ones(5, 2)
    x[3, 1] = bad
    with pytest.raises(ValueError, match=r"exact_w1: x has 1 point\(s\) with NaN or inf coordinates \(first at row 3\)"):
        exact_w1(x, y)


def test_exact_w1_is_exact_far_from_the_origin():
    # ||x||^2 - 2 x.y + ||y||^2 at |x| ~ 1e7 cancels to garbage in float64; the direct distance does not.
    x = 1e7 + torch.randn(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = x + torch.tensor([3e-4, 4e-4], dtype=torch.float64)  # every point moved by 5e-4 (up to x's rounding)
    assert exact_w1(x, y) == pytest.approx(5e-4, rel=1e-4)  # through the expansion: 0.0 for most points


def test_frechet_with_a_nan_covariance():
    with pytest.raises(ValueError, match=r"sigma2 contains NaN or inf"):
        frechet_distance_from_stats(np.zeros(2), np.eye(2), np.zeros(2), np.array([[1.0, np.nan], [np.nan, 1.0]]))


def test_frechet_with_a_covariance_that_is_not_psd():
    with pytest.raises(ValueError, match=r"sigma1 is not positive semi-definite \(smallest eigenvalue -1\)"):
        frechet_distance_from_stats(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


def test_frechet_with_an_asymmetric_covariance():
    with pytest.raises(ValueError, match=r"sigma1 is not symmetric"):
        frechet_distance_from_stats(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2))


def test_frechet_with_mismatched_sizes():
    with pytest.raises(ValueError, match=r"sigma1 has shape \(2, 2\) but the means have dimension 3"):
        frechet_distance_from_stats(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match=r"feature dimensions differ: mu1 \(3,\) vs mu2 \(2,\)"):
        frechet_distance_from_stats(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def test_mode_stats_with_a_nan_centre():
    centers = torch.tensor([[0.0, 0.0], [float("nan"), 1.0]])
    with pytest.raises(ValueError, match=r"centers contain NaN or inf"):
        mode_stats(torch.zeros(10, 2), centers, std=0.1)


def test_mode_stats_with_1d_centres():
    with pytest.raises(ValueError, match=r"centers must have shape \(K, d\).*got \(8,\); for 1-D data use centers\[:, None\]"):
        mode_stats(torch.zeros(10, 1), torch.arange(8.0), std=0.1)


def test_reverse_kl_is_inf_when_no_sample_is_high_quality():
    stats = mode_stats(torch.full((10, 2), 5.0), torch.zeros(1, 2), std=0.1)
    assert stats["reverse_kl"] == float("inf") and stats["modes"] == 0 and stats["hq"] == 0.0


def test_hq_is_strictly_below_three_sigma():
    on_the_edge = torch.tensor([[1.5, 0.0], [1.4999, 0.0]])  # 1.5 / 0.5 is exactly 3 in binary floating point
    assert mode_stats(on_the_edge, torch.zeros(1, 2), std=0.5)["counts"] == [1]


# -- a writer killed at random moments -------------------------------------------------------------

WRITER = textwrap.dedent('''
    """Fork server: imports torch once, then on each stdin line forks a child that trains a small model,
    checkpointing every step, until it is killed; prints the child's pid, then 'reaped' once it is gone."""
    import os, sys
    import torch
    from ganlib import data, losses
    from ganlib.models import MLPDiscriminator, MLPGenerator
    from ganlib.train import Trainer

    def train(path, steps=10**9):
        torch.manual_seed(os.getpid())
        trainer = Trainer(MLPGenerator(z_dim=2, hidden=256, depth=3), MLPDiscriminator(hidden=16, depth=2),
                          data.SamplerSource(data.toy("ring").sample, 16), d_loss=losses.discriminator_bce,
                          g_loss=losses.generator_nonsaturating, checkpoint_path=path, checkpoint_every=path and 1,
                          log_every=10**6, progress=False, device=torch.device("cpu"))
        if path and os.path.exists(path):
            trainer.resume(path)
        trainer.fit(steps)

    train(None, steps=1)  # pay every first-call cost once, here, not in each child
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                train(sys.argv[1])
            finally:
                os._exit(1)
        print(pid, flush=True)
        os.waitpid(pid, 0)
        print("reaped", flush=True)
''')


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork and SIGKILL")
def test_sigkill_at_random_moments_always_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    (tmp_path / "writer.py").write_text(WRITER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    server = subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    rng, steps, temps_seen = random.Random(0), [], 0
    try:
        for _ in range(10):
            before = path.stat().st_mtime_ns if path.exists() else None
            server.stdin.write("go\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (before if not path.exists() else path.stat().st_mtime_ns) == before:
                time.sleep(0.005)  # until this child has saved once: kill it while it trains and saves
            time.sleep(rng.uniform(0.0, 0.1))
            os.kill(pid, signal.SIGKILL)
            assert server.stdout.readline().strip() == "reaped"
            temps_seen += len(list(tmp_path.glob(".ckpt.pt.tmp-*")))
            steps.append(load_checkpoint(path)["step"])  # never a CheckpointError
            make_trainer(hidden=256, depth=3, ema_decay=None).resume(path).save(path)  # the next save...
            assert not list(tmp_path.glob(".ckpt.pt.tmp-*"))  # ...removes what the killed writer left
    finally:
        server.stdin.close()
        server.kill()
        server.wait()
    assert steps[-1] > steps[0] >= 1, steps  # the children really trained (each resumed the last save)
    print(f"steps at each kill: {steps}; temp files left by kills mid-write: {temps_seen}")
