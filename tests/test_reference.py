"""Reference models: the shipped weights load, match their manifest, and still score what the manifest says."""
import json
import shutil

import pytest
import torch

from ganlib import reference as ref
from ganlib.experiments import reference as runs
from ganlib.models.dcgan import Generator

SHIPPED = ref.names() if (ref.reference_dir() / ref.MANIFEST).is_file() else []


def _tiny_reference(tmp_path, kind="unconditional"):
    """A reference folder with one small DCGAN generator written the way the run writes it."""
    torch.manual_seed(0)
    kwargs = dict(z_dim=8, image_size=28, channels=1, width=4)
    G = Generator(**kwargs).eval()
    state = ref.half_round_trip(G)
    path = tmp_path / "tiny.pt"
    torch.save(state, path)
    manifest = {"models": {"tiny": {"file": "tiny.pt", "kind": kind, "model": ref.class_path(G), "kwargs": kwargs,
                                    "sha256": ref.sha256_of(path)}}}
    (tmp_path / ref.MANIFEST).write_text(json.dumps(manifest))
    return G, path


def test_load_rebuilds_the_model_and_gives_the_same_images(tmp_path):
    G, _ = _tiny_reference(tmp_path)
    loaded = ref.load("tiny", device=torch.device("cpu"), directory=tmp_path)
    assert isinstance(loaded, Generator) and not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(loaded(z), G(z))  # G holds the fp16-rounded weights, as shipped


def test_generate_is_seeded_and_in_range(tmp_path):
    _tiny_reference(tmp_path)
    G = ref.load("tiny", device=torch.device("cpu"), directory=tmp_path)
    a, b, c = (ref.generate(G, "unconditional", 5, seed=s) for s in (1, 1, 2))
    assert a.shape == (5, 1, 28, 28) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1
    with pytest.raises(ValueError, match="unconditional"):
        ref.generate(G, "unconditional", 5, labels=torch.arange(5))
    with pytest.raises(ValueError, match="positive int"):
        ref.generate(G, "unconditional", 0)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "missing"])
def test_damaged_weights_are_refused_with_the_file_and_the_fix(tmp_path, damage):
    _, path = _tiny_reference(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 3]))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    with pytest.raises(ref.ReferenceError) as err:
        ref.load("tiny", directory=tmp_path)
    message = str(err.value)
    assert "tiny.pt" in message and "scripts/reference.py tiny" in message
    assert ("missing" if damage == "missing" else "does not match its manifest") in message


def test_manifest_mismatch_and_foreign_classes_are_refused(tmp_path):
    _tiny_reference(tmp_path)
    manifest = json.loads((tmp_path / ref.MANIFEST).read_text())
    manifest["models"]["tiny"]["kwargs"]["width"] = 8  # other width than the weights
    (tmp_path / ref.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ref.ReferenceError, match="does not fit"):
        ref.load("tiny", directory=tmp_path)
    manifest["models"]["tiny"]["model"] = "os.system"
    (tmp_path / ref.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ref.ReferenceError, match="only ganlib.models"):
        ref.load("tiny", directory=tmp_path)


def test_unknown_name_and_missing_manifest(tmp_path):
    _tiny_reference(tmp_path)
    with pytest.raises(ref.ReferenceError, match="shipped: tiny"):
        ref.load("stylegan9", directory=tmp_path)
    with pytest.raises(ref.ReferenceError, match="missing"):
        ref.names(tmp_path / "nowhere")


def test_wanted_reads_the_switch(monkeypatch):
    monkeypatch.setenv("GANLIB_SCALE", "small")
    monkeypatch.delenv("GANLIB_REFERENCE", raising=False)
    assert ref.wanted() == "load"
    monkeypatch.setenv("GANLIB_SCALE", "full")
    assert ref.wanted() == "train"
    monkeypatch.setenv("GANLIB_REFERENCE", "load")
    assert ref.wanted() == "load"
    monkeypatch.setenv("GANLIB_REFERENCE", "download")
    with pytest.raises(ValueError, match="GANLIB_REFERENCE"):
        ref.wanted()


def test_batchnorm_recalibration_matches_the_batch_statistics():
    # After re-estimation, eval mode (running stats) must equal train mode on a batch as large as all the
    # re-estimation batches together, up to the variance's N vs N-1 and the batch-to-batch spread.
    torch.manual_seed(0)
    G = Generator(z_dim=8, image_size=28, channels=1, width=4)
    for bn in (m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.fill_(5.0)  # stale statistics that belong to other weights
    z = torch.randn(4096, 8, generator=torch.Generator().manual_seed(1))
    chunks = iter(z.split(256))
    with torch.no_grad():
        ref.recalibrate_batchnorm_(G, lambda net: net(next(chunks)), batches=16)
        G.eval()
        eval_out = G(z[:64])
        bn = G.net[1]
        h = G.net[0](z[:, :, None, None])
        assert torch.allclose(bn.running_mean, h.mean(dim=(0, 2, 3)), atol=1e-5)
        assert bn.momentum == 0.1  # the training momentum is given back
    assert eval_out.shape == (64, 1, 28, 28)


def test_a_short_run_resumes_and_exports_a_loadable_model(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "RECALIBRATION_BATCHES", 2)  # the statistics of 512 samples do for a 3-step model
    kwargs = dict(root=tmp_path / "runs", out_dir=tmp_path / "out", progress=False, log=lambda msg: None, n_eval=100,
                  device=torch.device("cpu"))
    first = runs.run("dcgan", steps=2, **kwargs)
    assert first["steps"] == 2 and first["images_seen"] == 2 * runs.RECIPES["dcgan"].batch  # real images D saw
    second = runs.run("dcgan", steps=3, **kwargs)  # resumes from step 2: one more step, not three
    assert second["steps"] == 3 and second["images_seen"] == 3 * runs.RECIPES["dcgan"].batch
    G = ref.load("dcgan", directory=tmp_path / "out")
    assert ref.generate(G, "unconditional", 4).shape == (4, 1, 28, 28)
    assert set(second["metrics"]) >= {"fd", "floor", "n"}


# -- the shipped models ----------------------------------------------------------------------------

@pytest.mark.skipif(not SHIPPED, reason="no reference model shipped yet")
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_checks_out_and_samples(name):
    info = ref.entry(name)
    assert info["sha256"] == ref.sha256_of(ref.reference_dir() / info["file"])
    assert (ref.reference_dir() / info["file"]).stat().st_size <= 3_000_000
    recipe = runs.recipe(name)
    x = ref.sample(name, 8, seed=0)
    size = runs.image_size(recipe)
    assert x.shape == (8, 1, size, size) and x.device.type == "cpu"
    assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, ref.sample(name, 8, seed=0))
    if info["kind"] == "conditional":
        assert torch.equal(ref.sample(name, 10, labels=torch.arange(10)), ref.sample(name, 10))  # default arange % 10


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED, reason="no reference model shipped yet")
@pytest.mark.parametrize("name", SHIPPED)
def test_manifest_metrics_are_remeasured_from_the_shipped_weights(name):
    # Same images (seeded), same classifier: a stale manifest or changed weights move the FD far more than
    # the 2 % we allow for float differences between machines.
    info = ref.entry(name)
    recipe = runs.recipe(name)
    model = ref.load(name, device=torch.device("cpu"))
    now = runs.measure(model, recipe, n=info["metrics"]["n"])
    assert now["fd"] == pytest.approx(info["metrics"]["fd"], rel=0.02)
    if "accuracy" in now:
        assert now["accuracy"] == pytest.approx(info["metrics"]["accuracy"], abs=0.01)
