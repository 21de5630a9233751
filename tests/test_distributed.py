"""Data-parallel training (ganlib.distributed through the Trainer) on a CPU: gloo, 2 processes.

One spawn of two processes runs every two-process scenario (starting processes is the slow part); the tests
then compare what they wrote with single-process runs made here:
* 2 processes x batch B equal 1 process x batch 2B within float rounding (a model without BatchNorm, with R1,
  so the double backward through DDP is part of the comparison);
* the weights are identical on both ranks after K steps, for DCGAN (per-rank BatchNorm), PGGAN growing
  through a fade-in with the gradient penalty (staged layers: find_unused_parameters) and StyleGAN with lazy R1;
* a checkpoint written at world size 2 resumes at world size 1 and one written at world size 1 resumes at
  world size 2, each continuing as the uninterrupted single-process run does.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import ganlib
from ganlib import data, losses
from ganlib.models import MLPDiscriminator, MLPGenerator
from ganlib.checkpoint import load_checkpoint
from ganlib.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
B = 8  # per-process batch; the global batch is 2B
K = 4  # steps before the checkpoint


def toy_trainer(batch, checkpoint=None, distributed=None):
    """MLPs without BatchNorm, R1 on every D step, EMA: every part of the loop that data parallelism touches."""
    ganlib.seed_everything(0)
    G, D = MLPGenerator(z_dim=2, hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2)
    source = data.SamplerSource(data.toy("ring").sample, batch, seed=0)
    return Trainer(G, D, source, d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating,
                   d_penalty=lambda D, real, fake, y: 0.5 * losses.r1_penalty(D, real), ema_decay=0.9, lr=1e-3,
                   log_every=1, progress=False, device=torch.device("cpu"), checkpoint_path=checkpoint,
                   distributed=distributed)


def flat(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def same_on_all_ranks(module):
    mine = flat(module)
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(everyone, mine)
    return all(torch.equal(everyone[0], other) for other in everyone[1:])


def image_source(channels, batch):
    x = torch.rand(4 * batch, channels, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return data.TensorSource(x, batch_size=batch, seed=0)


def bn_dcgan_run():
    from ganlib.models import dcgan
    torch.manual_seed(dist.get_rank())  # different initial weights: DDP must start every rank from rank 0's
    G = dcgan.Generator(z_dim=8, image_size=32, channels=1, width=4)
    D = dcgan.Discriminator(image_size=32, channels=1, width=4)
    tr = Trainer(G, D, image_source(1, 2 * B), d_loss=losses.discriminator_bce,
                 g_loss=losses.generator_nonsaturating, progress=False, device=torch.device("cpu"))
    tr.fit(3)
    return tr


def pggan_run():
    from ganlib.experiments.progressive import ProgressiveSchedule, make_trainer
    from ganlib.models import pggan
    torch.manual_seed(0)
    G = pggan.PGGANGenerator(z_dim=8, img_channels=1, channels=(4, 4, 4, 4))
    D = pggan.PGGANDiscriminator(img_channels=1, channels=(4, 4, 4, 4))
    tr = make_trainer(G, D, image_source(1, 2 * B), ProgressiveSchedule(G.n_levels, 1), gp_at="current",
                      progress=False, device=torch.device("cpu"))
    tr.fit(4)  # 4x4, fade to 8x8, 8x8, fade to 16x16: unused layers at every stage, GP through DDP
    return tr


def stylegan_run():
    from ganlib.models import stylegan
    torch.manual_seed(0)
    G = stylegan.StyleGenerator(z_dim=8, w_dim=8, mapping_depth=2, img_channels=1, fmap_base=64, fmap_max=4)
    D = stylegan.StyleDiscriminator(img_channels=1, fmap_base=64, fmap_max=4)
    tr = Trainer(G, D, image_source(1, 2 * B), d_loss=losses.discriminator_bce,
                 g_loss=losses.generator_nonsaturating, d_penalty=losses.r1_regularizer(1.0), d_penalty_every=2,
                 ema_decay=0.9, progress=False, device=torch.device("cpu"))
    tr.fit(3)
    return tr


def _worker(rank, world, folder):
    torch.set_num_threads(1)
    folder = Path(folder)
    dist.init_process_group("gloo", init_method=f"file://{folder / 'store'}", rank=rank, world_size=world)
    try:
        results = {}
        toy = toy_trainer(2 * B, checkpoint=folder / "world2.pt")
        toy.fit(K)
        results["toy"] = {"G": flat(toy.G), "D": flat(toy.D), "d_loss": toy.history["d_loss"],
                          "has_ema": toy.G_ema is not None, "ranks_agree": same_on_all_ranks(toy.G)
                          and same_on_all_ranks(toy.D)}
        resumed = toy_trainer(2 * B).resume(folder / "world1.pt")  # written by one process, before the spawn
        resumed.fit(K + 2)
        results["from_world1"] = {"G": flat(resumed.G), "D": flat(resumed.D)}
        for name, run in (("dcgan", bn_dcgan_run), ("pggan", pggan_run), ("stylegan", stylegan_run)):
            tr = run()
            results[name] = {"ranks_agree": same_on_all_ranks(tr.G) and same_on_all_ranks(tr.D), "step": tr.step}
        torch.save(results, folder / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    single = toy_trainer(2 * B, checkpoint=folder / "world1.pt")
    single.fit(K)
    mp.spawn(_worker, args=(2, str(folder)), nprocs=2)
    return folder, [torch.load(folder / f"rank{r}.pt", weights_only=True) for r in range(2)]


def test_two_processes_of_batch_b_equal_one_process_of_batch_2b(two_processes):
    _, ranks = two_processes
    single = toy_trainer(2 * B, distributed=False)
    single.fit(K)
    for rank in ranks:
        assert rank["toy"]["ranks_agree"]
        assert torch.allclose(rank["toy"]["G"], flat(single.G), rtol=1e-4, atol=1e-6)
        assert torch.allclose(rank["toy"]["D"], flat(single.D), rtol=1e-4, atol=1e-6)
    # rank 0 logs the loss averaged over both halves of the batch: the single process's loss
    assert ranks[0]["toy"]["d_loss"] == pytest.approx(single.history["d_loss"], rel=1e-4)
    assert not torch.equal(flat(single.G), flat(toy_trainer(2 * B, distributed=False).G))  # training moved G


def test_only_rank_0_keeps_the_ema_generator(two_processes):
    _, ranks = two_processes
    assert ranks[0]["toy"]["has_ema"] and not ranks[1]["toy"]["has_ema"]


@pytest.mark.parametrize("model", ["dcgan", "pggan", "stylegan"])
def test_weights_are_identical_on_both_ranks(two_processes, model):
    _, ranks = two_processes
    assert all(rank[model]["ranks_agree"] for rank in ranks)
    assert ranks[0][model]["step"] == ranks[1][model]["step"] > 0


def test_checkpoint_of_two_processes_resumes_in_one(two_processes):
    folder, _ = two_processes
    state = load_checkpoint(folder / "world2.pt")
    assert state["step"] == K and state["G_ema"] is not None  # written by rank 0, with its EMA
    resumed = toy_trainer(2 * B, distributed=False).resume(folder / "world2.pt")
    resumed.fit(K + 2)
    straight = toy_trainer(2 * B, distributed=False)
    straight.fit(K + 2)
    assert torch.allclose(flat(resumed.G), flat(straight.G), rtol=1e-4, atol=1e-6)
    assert torch.allclose(flat(resumed.D), flat(straight.D), rtol=1e-4, atol=1e-6)


def test_checkpoint_of_one_process_resumes_in_two(two_processes):
    _, ranks = two_processes
    straight = toy_trainer(2 * B, distributed=False)
    straight.fit(K + 2)
    for rank in ranks:
        assert torch.allclose(rank["from_world1"]["G"], flat(straight.G), rtol=1e-4, atol=1e-6)
        assert torch.allclose(rank["from_world1"]["D"], flat(straight.D), rtol=1e-4, atol=1e-6)


def test_batch_that_does_not_split_evenly_is_a_clear_error():
    from ganlib.distributed import Group
    with pytest.raises(ValueError, match="does not split evenly over 2 processes"):
        Group(rank=1, world_size=2).shard(torch.zeros(7, 2))
    assert torch.equal(Group(rank=1, world_size=2).shard(torch.arange(6)), torch.tensor([3, 4, 5]))


def test_distributed_true_without_a_process_group_is_a_clear_error():
    with pytest.raises(ValueError, match="torchrun"):
        toy_trainer(8, distributed=True)


def test_torchrun_command_line_trains_on_two_processes_and_resumes_on_one(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", GANLIB_DEVICE="cpu", GANLIB_SCALE="smoke",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "run"
    train = ["train", "mlp", "--data", "ring", "--batch", "32", "--out", str(out), "--sample-every", "0"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "ganlib"]
    first = subprocess.run(torchrun + train + ["--steps", "3"], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3
    second = subprocess.run([sys.executable, "-m", "ganlib"] + train + ["--steps", "5", "--resume"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 5 and state["meta"]["world_size"] == 1
