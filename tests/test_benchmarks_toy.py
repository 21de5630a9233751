"""benchmarks/toy_modes.py: its metric on exact mixture samples, its summary, its smoke run and JSON shape."""
import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ganlib.data import toy
from ganlib.experiments.toy import ToyConfig, ToyResult, score, summarise

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("toy_modes", ROOT / "benchmarks" / "toy_modes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ExactSampler(nn.Module):
    """A 'generator' that ignores z and returns true mixture samples: the perfect sampler."""

    def __init__(self, mixture, seed=0):
        super().__init__()
        self.mixture, self.gen, self.z_dim = mixture, torch.Generator().manual_seed(seed), 2

    def forward(self, z):
        return self.mixture.sample(len(z), self.gen)


@pytest.mark.parametrize("name, modes", [("ring", 8), ("grid", 25)])
def test_metric_on_exact_mixture_samples_gives_all_modes(name, modes):
    mixture = toy(name)
    fake_trainer = SimpleNamespace(G=ExactSampler(mixture), G_ema=None, device=torch.device("cpu"))
    stats = score(fake_trainer, mixture, n=2500)
    assert stats["modes"] == modes
    # P(chi_2 < 3) = 1 - exp(-4.5) = 98.89 %; with 2,500 samples the std is 0.2 %
    assert stats["hq"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert stats["reverse_kl"] < 0.02


def test_summarise_is_mean_and_population_std():
    runs = [ToyResult(ToyConfig(steps=7), None, {"modes": m, "hq": h, "reverse_kl": k}, s)
            for m, h, k, s in [(8, 0.9, 0.1, 1.0), (6, 0.5, 0.3, 3.0)]]
    t = summarise(runs)
    assert t["modes_mean"] == 7 and t["modes_std"] == pytest.approx(1.0)
    assert t["hq_mean"] == pytest.approx(70.0) and t["hq_std"] == pytest.approx(20.0)
    assert t["rkl_mean"] == pytest.approx(0.2) and t["seconds_per_run"] == pytest.approx(2.0)
    assert (t["seeds"], t["steps"]) == (2, 7)


def test_smoke_run_writes_the_documented_shape(tmp_path):
    bench = _bench()
    out = tmp_path / "toy.json"
    bench.main(["--scale", "smoke", "--workers", "1", "--losses", "ns,wgan_gp", "--out", str(out)])
    table = json.loads(out.read_text())
    assert set(table) == {"ring", "grid"}
    for ds in table.values():
        assert set(ds) == {"ns", "wgan_gp"}
        for row in ds.values():
            assert set(row) == {"modes_mean", "modes_std", "hq_mean", "hq_std", "rkl_mean", "seeds", "steps",
                                "seconds_per_run"}
            assert row["seeds"] == 1 and row["steps"] == 20


def test_unknown_loss_is_a_clear_error():
    with pytest.raises(SystemExit):
        _bench().main(["--scale", "smoke", "--losses", "hinge"])


def test_committed_results_have_every_loss_and_five_seeds():
    path = ROOT / "benchmarks" / "results" / "toy_modes.json"
    if not path.is_file():
        pytest.skip("no committed benchmark results yet")
    table = json.loads(path.read_text())
    for ds in ("ring", "grid"):
        assert set(table[ds]) >= {"ns", "minimax", "wgan", "wgan_gp", "lsgan"}
        assert all(row["seeds"] >= 5 for row in table[ds].values())
