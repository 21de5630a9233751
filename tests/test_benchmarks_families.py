"""benchmarks/mnist_families.py: its smoke run, what it writes, and the committed results chapter 10 reads."""
import json
from pathlib import Path

import pytest
import torch
from torchvision.io import read_image
import repo_files

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("DCGAN", "PGGAN", "StyleGAN")


def _bench():
    return repo_files.load("benchmarks/mnist_families.py", "mnist_families")


def test_smoke_run_writes_curves_a_floor_and_the_sample_grid(tmp_path):
    bench = _bench()
    out = tmp_path / "families.json"
    bench.main(["--scale", "smoke", "--out", str(out)])
    table = json.loads(out.read_text())
    cfg = bench.SETTINGS["smoke"]
    assert table["scale"] == "smoke" and table["settings"] == cfg
    rows = table["results"]
    assert rows["real_vs_real"]["kind"] == "reference" and rows["real_vs_real"]["fd"] >= 0
    for name in FAMILIES:
        r = rows[name]
        assert r["kind"] == "model" and r["steps"] == cfg["steps"]
        # one FD per `every` steps (Evaluate's cadence), the last at the end of the budget
        assert r["curve"]["step"] == list(range(cfg["every"], cfg["steps"] + 1, cfg["every"]))
        assert r["fd"] == r["curve"]["fd"][-1] > 0
        assert all(a <= b for a, b in zip(r["curve"]["seconds"], r["curve"]["seconds"][1:]))
    grid = read_image(str(out.with_suffix(".png")))
    # save_image with nrow 16 and padding 1: 3 rows of 16 tiles of 32 px, 1 px between and around them
    assert grid.shape[1:] == (3 * 33 + 1, 16 * 33 + 1)


def test_a_run_is_reproduced_by_its_seed_and_changed_by_another():
    bench = _bench()
    first = bench.run("smoke", seed=0, families=["DCGAN"])
    again = bench.run("smoke", seed=0, families=["DCGAN"])
    other = bench.run("smoke", seed=1, families=["DCGAN"])
    assert first["DCGAN"]["curve"]["fd"] == again["DCGAN"]["curve"]["fd"]
    assert torch.equal(first["DCGAN"]["samples"], again["DCGAN"]["samples"])
    assert first["DCGAN"]["curve"]["fd"] != other["DCGAN"]["curve"]["fd"]
    assert set(first) == {"real_vs_real", "DCGAN"}


def test_unknown_family_is_refused_with_the_choices():
    with pytest.raises(SystemExit):
        _bench().main(["--scale", "smoke", "--families", "BigGAN"])


def test_committed_results_have_the_documented_shape():
    path = ROOT / "benchmarks" / "results" / "mnist_families.json"
    if not path.is_file():
        pytest.skip("no committed results yet: python benchmarks/mnist_families.py")
    table = json.loads(path.read_text())
    assert table["scale"] in ("small", "full")
    rows = table["results"]
    assert rows["real_vs_real"]["kind"] == "reference"
    for name in FAMILIES:
        assert rows[name]["kind"] == "model" and rows[name]["steps"] == table["settings"]["steps"]
        assert rows[name]["fd"] == rows[name]["curve"]["fd"][-1] and rows[name]["seconds"] > 0
    assert path.with_suffix(".png").is_file()


def test_samples_are_clamped_seeded_and_leave_the_training_rng_alone():
    bench = _bench()
    data = bench.TensorSource(torch.rand(64, 1, 32, 32) * 2 - 1, batch_size=8, seed=0)
    trainer = bench.trainers(data, bench.SETTINGS["smoke"], torch.device("cpu"))["StyleGAN"]()
    with torch.no_grad():  # push the linear output past [-1, 1], where a score must see the clamped image
        trainer.G_ema.synthesis.to_rgb.bias.fill_(3.0)
    state = torch.get_rng_state()
    first, again = bench.samples(trainer, 8, seed=5), bench.samples(trainer, 8, seed=5)
    assert torch.equal(torch.get_rng_state(), state)  # StyleGAN's noise images too come from the seeded stream
    assert torch.equal(first, again) and not torch.equal(first, bench.samples(trainer, 8, seed=6))
    assert first.min() >= -1 and first.max() == 1
