"""benchmarks/toy_modes.py: its metric on exact mixture samples, its summary, its smoke run and JSON shape."""
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ganlib.data import toy
from ganlib.experiments.toy import ToyConfig, ToyResult, score, summarise
import repo_files

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    return repo_files.load("benchmarks/toy_modes.py", "toy_modes")


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


def test_summarise_is_mean_population_std_and_median():
    runs = [ToyResult(ToyConfig(steps=7), None, {"modes": m, "hq": h, "reverse_kl": k}, s)
            for m, h, k, s in [(8, 0.9, 0.1, 1.0), (6, 0.5, 0.3, 3.0)]]
    t = summarise(runs)
    assert t["modes_mean"] == 7 and t["modes_std"] == pytest.approx(1.0)
    assert t["hq_mean"] == pytest.approx(70.0) and t["hq_std"] == pytest.approx(20.0)
    assert t["rkl_mean"] == pytest.approx(0.2) and t["seconds_per_run"] == pytest.approx(2.0)
    assert (t["seeds"], t["steps"]) == (2, 7)
    assert (t["modes_median"], t["hq_median"], t["rkl_median"]) == pytest.approx((7, 70.0, 0.2))  # two: their mean
    runs.append(ToyResult(ToyConfig(steps=7), None, {"modes": 3, "hq": 0.0, "reverse_kl": math.inf}, 2.0))
    t = summarise(runs)
    assert t["rkl_mean"] == math.inf  # one seed without HQ samples makes the mean undefined, not the median
    assert (t["modes_median"], t["hq_median"], t["rkl_median"]) == pytest.approx((6, 50.0, 0.3))


ROW_KEYS = {"modes_mean", "modes_std", "modes_median", "hq_mean", "hq_std", "hq_median", "rkl_mean", "rkl_median",
            "seeds", "steps", "seconds_per_run", "runs"}


def test_smoke_run_writes_the_documented_shape(tmp_path):
    bench = _bench()
    out = tmp_path / "toy.json"
    bench.main(["--scale", "smoke", "--workers", "1", "--losses", "ns,wgan_gp", "--seeds", "2", "--datasets", "grid",
                "--out", str(out)])
    table = json.loads(out.read_text())
    assert set(table) == {"grid"}
    for ds in table.values():
        assert set(ds) == {"ns", "wgan_gp"}
        for row in ds.values():
            assert set(row) == ROW_KEYS
            assert row["seeds"] == 2 and row["steps"] == 20
            assert [r["seed"] for r in row["runs"]] == [0, 1]
            assert set(row["runs"][0]) == {"seed", "modes", "hq", "rkl", "seconds"}
            assert row["modes_mean"] == pytest.approx(sum(r["modes"] for r in row["runs"]) / 2)
            assert row["hq_median"] == pytest.approx(sum(r["hq"] for r in row["runs"]) / 2)


def test_one_configuration_merges_into_the_table_beside_its_plain_row(tmp_path):
    out = tmp_path / "toy.json"
    kept = {"modes_mean": 1.0, "note": "an earlier run's row"}
    out.write_text(json.dumps({"ring": {"wgan": kept}, "grid": {"ns_tips": {"stale": True}}}))
    _bench().main(["--scale", "smoke", "--workers", "1", "--losses", "ns_tips_drs", "--datasets", "grid,ring_5",
                   "--out", str(out)])
    table = json.loads(out.read_text())
    assert table["ring"] == {"wgan": kept}  # rows of other configurations and datasets stay
    assert set(table["grid"]) == {"ns_tips", "ns_tips_drs"} and "stale" not in table["grid"]["ns_tips"]
    drs, plain = table["grid"]["ns_tips_drs"], table["grid"]["ns_tips"]
    assert set(drs) == ROW_KEYS | {"acceptance_mean"} and 0 < drs["acceptance_mean"] <= 1
    assert drs["seconds_per_run"] >= plain["seconds_per_run"]  # DRS's time comes on top of the same training
    assert set(table["hidden"]) == {"ring_5"} and set(table["hidden"]["ring_5"]) == {"ns_tips", "ns_tips_drs"}
    assert not list(tmp_path.glob("*.tmp"))  # written through a temp file that was renamed into place


def test_unknown_loss_or_dataset_is_a_clear_error():
    with pytest.raises(SystemExit):
        _bench().main(["--scale", "smoke", "--losses", "hinge"])
    with pytest.raises(SystemExit):
        _bench().main(["--scale", "smoke", "--datasets", "moons"])


def test_committed_results_have_every_loss_and_five_seeds():
    path = ROOT / "benchmarks" / "results" / "toy_modes.json"
    if not path.is_file():
        pytest.skip("no committed benchmark results yet")
    table = json.loads(path.read_text())
    for ds in ("ring", "grid"):
        assert set(table[ds]) >= {"ns", "minimax", "wgan", "wgan_gp", "lsgan"}
        assert all(row["seeds"] >= 5 for row in table[ds].values())
