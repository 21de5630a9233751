"""benchmarks/throughput.py: its reference loop is pytorch/examples' DCGAN, its smoke run, its committed results."""
import json
from pathlib import Path

import pytest
import torch
import repo_files

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    return repo_files.load("benchmarks/throughput.py", "throughput")


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_reference_loop_has_pytorch_examples_networks():
    bench = _bench()
    ref = bench.ReferenceLoop(64, 64, torch.device("cpu"))
    # the parameter counts pytorch/examples' dcgan/main.py prints for nc = 3, nz = 100, ngf = ndf = 64
    assert count(ref.netG) == 3_576_704 and count(ref.netD) == 2_765_568
    from ganlib.models import dcgan
    assert count(dcgan.Generator(100, 64, 3, 64)) == count(ref.netG)  # ganlib's side of the comparison: same nets
    assert count(dcgan.Discriminator(64, 3, 64)) == count(ref.netD)
    fake = ref.netG(torch.randn(2, 100, 1, 1))
    assert fake.shape == (2, 3, 64, 64) and fake.abs().max() <= 1
    p = ref.netD(fake).view(-1)
    assert p.shape == (2,) and ((p > 0) & (p < 1)).all()  # a sigmoid D, for BCELoss


def test_reference_step_updates_both_networks_once():
    bench = _bench()
    torch.manual_seed(0)
    ref = bench.ReferenceLoop(4, 32, torch.device("cpu"))
    g0 = [p.detach().clone() for p in ref.netG.parameters()]
    d0 = [p.detach().clone() for p in ref.netD.parameters()]
    d_loss, g_loss = ref.step(torch.rand(8, 3, 32, 32) * 2 - 1)
    assert d_loss > 0 and g_loss > 0
    assert all(not torch.equal(a, b) for a, b in zip(g0, ref.netG.parameters()) if a.dim() > 1)
    assert all(not torch.equal(a, b) for a, b in zip(d0, ref.netD.parameters()) if a.dim() > 1)
    assert ref.optD.state[next(ref.netD.parameters())]["step"] == 1  # one Adam step each
    assert ref.optG.state[next(ref.netG.parameters())]["step"] == 1


def test_smoke_run_measures_every_family_and_the_ratio(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLIB_CACHE", str(tmp_path))  # precision auto measures once, into a temporary cache
    out = tmp_path / "throughput.json"
    result = _bench().main(["--scale", "smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    families = {row["model"].split(" ")[0] for row in result["families"]}
    assert families == {"toy", "DCGAN", "CGAN", "LapGAN", "PGGAN", "StyleGAN", "StyleGAN2"}
    assert {row["variant"] for row in result["families"]} == {"fp32", "bf16", "fp32 channels_last"}
    assert all("error" not in row and row["steps_per_s"] > 0 for row in result["families"])
    rows = result["reference_comparison"]["rows"]
    assert rows[0]["loop"].startswith("reference loop") and rows[0]["ratio_to_reference"] == 1.0
    assert len(rows) >= 4 and all(r["ratio_to_reference"] > 0 for r in rows)


def test_committed_cpu_results_have_the_reference_ratio():
    path = ROOT / "benchmarks" / "results" / "throughput_cpu.json"
    if not path.is_file():
        pytest.skip("no committed throughput results yet")
    result = json.loads(path.read_text())
    assert result["scale"] == "full" and result["machine"]["device"] == "cpu" and result["note"]
    rows = result["reference_comparison"]["rows"]
    assert "ngf = ndf = 64, batch 64" in result["reference_comparison"]["settings"]
    assert rows[0]["ratio_to_reference"] == 1.0 and len(rows) >= 3
