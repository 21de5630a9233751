"""python -m ganlib: argument errors, train + resume + sample + fid on bundled data, folders, every model."""
import math

import pytest
import torch
from PIL import Image

from ganlib import cli
from ganlib.checkpoint import load_checkpoint


def run(*argv):
    return cli.main([str(a) for a in argv])


def error_of(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        run(*argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def weights(path, key="G"):
    return torch.cat([t.flatten().float() for t in load_checkpoint(path)[key].values()])


@pytest.mark.parametrize("argv, message", [
    (["train", "biggan", "--data", "mnist"], "invalid choice: 'biggan'"),
    (["train", "dcgan", "--data", "imagenet"], "neither a bundled dataset"),
    (["train", "dcgan", "--data", "mnist", "--size", "48"], "invalid choice: 48"),
    (["train", "dcgan", "--data", "mnist", "--size", "64"], "use --size 32"),
    (["train", "dcgan", "--data", "mnist", "--steps", "0"], "whole number >= 1, got '0'"),
    (["train", "dcgan", "--data", "mnist", "--steps", "ten"], "whole number >= 1, got 'ten'"),
    (["train", "dcgan", "--data", "mnist", "--batch", "-4"], "whole number >= 1, got '-4'"),
    (["train", "dcgan", "--data", "mnist", "--batch", "100000"], "larger than the dataset"),
    (["train", "dcgan", "--data", "mnist", "--lr", "0"], "learning rate in (0, 1)"),
    (["train", "dcgan", "--data", "mnist", "--lr", "nan"], "learning rate in (0, 1)"),
    (["train", "dcgan", "--data", "mnist", "--lr", "3"], "learning rate in (0, 1)"),
    (["train", "dcgan", "--data", "mnist", "--sample-every", "-1"], "whole number >= 0"),
    (["train", "dcgan", "--data", "mnist", "--precision", "fp16"], "'fp16' needs a CUDA device"),
    (["train", "dcgan", "--data", "mnist", "--precision", "fp8"], "invalid choice: 'fp8'"),
    (["train", "dcgan", "--data", "ring"], "toys (ring) are for mlp"),
    (["train", "mlp", "--data", "mnist"], "mlp trains on a toy distribution"),
    (["train", "mlp", "--data", "ring", "--size", "32"], "toy data are points"),
    (["train", "dcgan", "--data", "mnist", "--channels", "3"], "--channels is for a folder"),
    (["train", "pggan", "--data", "mnist", "--compile"], "without --compile"),
    (["train", "dcgan", "--data", "mnist", "--resume"], "holds no checkpoint to continue"),
])
def test_bad_arguments_are_one_line_errors(capsys, tmp_path, argv, message):
    err = error_of(capsys, *argv, "--out", tmp_path / "run")
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_folder_errors(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    assert "no images" in error_of(capsys, "train", "dcgan", "--data", empty, "--out", tmp_path / "a")
    assert "a folder has none" in error_of(capsys, "train", "cgan", "--data", empty, "--out", tmp_path / "b")


def test_train_resume_sample_fid_on_bundled_mnist(tmp_path, capsys):
    out = tmp_path / "run"
    run("train", "dcgan", "--data", "mnist", "--steps", 3, "--out", out, "--sample-every", 2)
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 3
    meta = state["meta"]
    assert (meta["model"], meta["data"], meta["size"], meta["channels"], meta["batch"]) == ("dcgan", "mnist", 32, 1, 16)
    assert meta["generator"][0] == "ganlib.models.dcgan.Generator" and meta["generator"][1]["width"] == 8
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_000002.png", "step_000003.png"]
    # an existing run is never overwritten by accident, and a resume keeps what shaped its batches
    assert "pass --resume" in error_of(capsys, "train", "dcgan", "--data", "mnist", "--out", out)
    assert "--batch 16" in error_of(capsys, "train", "dcgan", "--data", "mnist", "--out", out, "--resume", "--batch", 8)
    assert "model 'dcgan'" in error_of(capsys, "train", "stylegan", "--data", "mnist", "--out", out, "--resume")
    assert "already at step 3" in error_of(capsys, "train", "dcgan", "--data", "mnist", "--out", out, "--resume",
                                           "--steps", 3)

    run("train", "dcgan", "--data", "mnist", "--steps", 5, "--out", out, "--resume", "--sample-every", 2)
    straight = tmp_path / "straight"
    run("train", "dcgan", "--data", "mnist", "--steps", 5, "--out", straight, "--sample-every", 0)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 5
    # resumed == uninterrupted, bit for bit; the sample grids (a forked random stream) changed nothing
    assert torch.equal(weights(out / "checkpoint.pt"), weights(straight / "checkpoint.pt"))
    assert torch.equal(weights(out / "checkpoint.pt", "D"), weights(straight / "checkpoint.pt", "D"))

    grid = tmp_path / "grid.png"
    run("sample", out / "checkpoint.pt", "-n", 64, "-o", grid)
    with Image.open(grid) as img:
        assert img.size == (8 * 34 + 2, 8 * 34 + 2)  # 8 x 8 images of 32 px with 2 px padding
    scores = run("fid", out / "checkpoint.pt", "-n", 200)
    assert math.isfinite(scores["classifier_fd"]) and scores["n"] == 200
    assert 0 < scores["floor"] < scores["classifier_fd"]  # 5 smoke steps are far from real digits
    assert "classifier_fd" in capsys.readouterr().out


def test_sample_is_the_same_for_the_same_seed(tmp_path):
    out = tmp_path / "run"
    run("train", "mlp", "--data", "ring", "--steps", 2, "--out", out, "--sample-every", 0)
    meta, G = cli.load_generator(out / "checkpoint.pt", torch.device("cpu"))
    a, b, c = (cli.generate(meta, G, 300, seed) for seed in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (300, 2)
    scores = run("fid", out / "checkpoint.pt")
    assert scores["of"] == 8 and 0 <= scores["modes"] <= 8  # the ring's modes, counted by the chapter's metric
    run("sample", out, "-n", 100, "-o", tmp_path / "points.png")
    assert (tmp_path / "points.png").stat().st_size > 0


def test_own_folder_of_grey_images(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(8):
        pixels = (torch.rand(40, 48, generator=gen) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels, mode="L").save(folder / f"{i}.png")
    out = tmp_path / "run"
    run("train", "dcgan", "--data", folder, "--channels", 1, "--batch", 4, "--steps", 2, "--out", out)
    meta = load_checkpoint(out / "checkpoint.pt")["meta"]
    assert meta["data"] == str(folder.resolve()) and meta["channels"] == 1
    scores = run("fid", out / "checkpoint.pt", "-n", 4)
    assert scores["n"] == 4 and math.isfinite(scores["classifier_fd"])


def test_rgb_folder_fid_says_what_to_use(tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (32, 32), (60 * i, 20, 200)).save(folder / f"{i}.png")
    run("train", "dcgan", "--data", folder, "--batch", 4, "--steps", 1, "--out", tmp_path / "run")
    assert "standard FID tool" in error_of(capsys, "fid", tmp_path / "run")


def test_sample_of_a_foreign_checkpoint_is_a_clear_error(tmp_path, capsys):
    from ganlib import data, losses
    from ganlib.models import MLPDiscriminator, MLPGenerator
    from ganlib.train import Trainer

    tr = Trainer(MLPGenerator(hidden=8, depth=1), MLPDiscriminator(hidden=8, depth=1),
                 data.SamplerSource(data.toy("ring").sample, 8), d_loss=losses.discriminator_bce,
                 g_loss=losses.generator_nonsaturating, progress=False, device=torch.device("cpu"))
    tr.save(tmp_path / "plain.pt")
    assert "not written by `python -m ganlib train`" in error_of(capsys, "sample", tmp_path / "plain.pt")
    assert "no checkpoint" in error_of(capsys, "sample", tmp_path / "missing.pt")


@pytest.mark.parametrize("model, data, size", [("cgan", "shapes", 32), ("lapgan", "mnist", 32),
                                               ("pggan", "shapes", 64), ("stylegan", "shapes", 32)])
def test_every_image_model_trains_samples_and_scores(tmp_path, model, data, size):
    out = tmp_path / "run"
    run("train", model, "--data", data, "--size", size, "--steps", 4, "--batch", 8, "--out", out, "--sample-every", 2)
    run("sample", out, "-n", 16, "-o", tmp_path / "grid.png")
    with Image.open(tmp_path / "grid.png") as img:
        assert img.size == (4 * (size + 2) + 2,) * 2
    scores = run("fid", out, "-n", 64)
    assert all(math.isfinite(v) for v in scores.values())
    if model == "lapgan":  # one checkpoint per level, each resumable on its own
        assert [load_checkpoint(out / f"level{k}.pt")["meta"]["level"] for k in range(3)] == [0, 1, 2]


def test_resume_keeps_the_runs_learning_rate_and_growth_schedule(tmp_path):
    out = tmp_path / "run"
    run("train", "pggan", "--data", "mnist", "--steps", 8, "--batch", 8, "--lr", 5e-4, "--out", out, "--sample-every", 0)
    first = load_checkpoint(out / "checkpoint.pt")
    assert first["meta"]["settings"]["phase_steps"] == 1  # 8 steps at the smoke share of 3 in 24
    run("train", "pggan", "--data", "mnist", "--steps", 16, "--out", out, "--resume", "--sample-every", 0)
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 16 and state["meta"]["settings"]["phase_steps"] == 1
    assert state["g_opt"]["param_groups"][0]["lr"] == 5e-4 and state["meta"]["settings"]["lr"] == 5e-4
    assert state["hooks"][0]["level"] == 3  # 7 one-step phases: at 32x32 since step 6
