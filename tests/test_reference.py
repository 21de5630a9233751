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
    assert first["finished"] is False  # a shortened run says so in its manifest entry
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
    channels = recipe.generator_kwargs.get("img_channels", recipe.generator_kwargs.get("channels", 1))
    assert x.shape == (8, channels, size, size) and x.device.type == "cpu"
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
    fd = "factor_fd" if recipe.family == "stylegan" else "fd"
    assert now[fd] == pytest.approx(info["metrics"][fd], rel=0.02)
    if recipe.family == "stylegan":
        for key in ("shape_confidence", "coarse_swap_changes_shape", "fine_swap_changes_shape"):
            assert now[key] == pytest.approx(info["metrics"][key], abs=0.01), key
    if "accuracy" in now:
        assert now["accuracy"] == pytest.approx(info["metrics"]["accuracy"], abs=0.01)


# -- StyleGAN: seeded noise, its own w_avg, the factor network's scores -----------------------------

def _tiny_stylegan():
    from ganlib.models.stylegan import StyleGenerator

    torch.manual_seed(0)
    return StyleGenerator(z_dim=8, w_dim=8, mapping_depth=2, fmap_base=64, fmap_max=8, modulation="demod").eval()


def test_style_kind_seeds_the_noise_too_and_truncation_is_style_only():
    G = _tiny_stylegan()
    G.w_avg.copy_(torch.randn(8))
    # noise strengths start at 0 (Sec. 3.2), so psi = 0 maps every latent to the image of w_avg
    assert torch.allclose(ref.generate(G, "style", 2, seed=1, psi=0.0), ref.generate(G, "style", 2, seed=2, psi=0.0))
    assert not torch.allclose(ref.generate(G, "style", 2, seed=1), ref.generate(G, "style", 2, seed=2))
    with torch.no_grad():  # make the noise matter: the same seed must still give the same images
        for layer in G.synthesis.layers:
            layer.noise.weight.fill_(1.0)
        z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(3))
        assert not torch.equal(G(z), G(z))  # unseeded noise differs from call to call ...
    assert torch.equal(ref.generate(G, "style", 4, seed=3), ref.generate(G, "style", 4, seed=3))  # ... seeded does not
    with pytest.raises(ValueError, match="StyleGAN"):
        ref.generate(Generator(z_dim=8, image_size=28, channels=1, width=4), "unconditional", 2, psi=0.5)


def test_exported_w_avg_is_the_mean_w_of_the_averaged_mapping():
    G = _tiny_stylegan()
    G.w_avg.fill_(5.0)  # what a training copy would carry over
    trainer = type("T", (), {"G_ema": G})()
    shipped = runs._export_stylegan(trainer)
    with torch.no_grad():  # an independent estimate, from other latents
        expected = G.mapping(torch.randn(20_000, G.z_dim, generator=torch.Generator().manual_seed(99))).mean(0)
    assert torch.allclose(shipped.w_avg, expected, atol=0.05)


def test_coarse_and_fine_ranges_at_32x32():
    # layers: 4x4 (0, 1), 8x8 (2, 3), 16x16 (4, 5), 32x32 (6, 7)
    assert runs.coarse_fine_ranges(_tiny_stylegan()) == {"coarse": (0, 4), "fine": (6, 8)}


def test_the_shipped_factor_network_reads_real_renders_and_refuses_a_damaged_file(tmp_path, monkeypatch):
    from ganlib.experiments import stylegan as lab

    scores = lab.score_factor_net(lab.load_factor_net(), seed=555, n=500)  # renders it never saw
    assert scores["shape"] >= 0.98 and scores["colour"] >= 0.98 and scores["background"] >= 0.98
    assert min(scores["size"], scores["x"], scores["y"]) >= 0.95  # R^2 against the true factors
    damaged = tmp_path / lab.FACTOR_NET_FILE
    damaged.write_bytes(lab.factor_net_path().read_bytes()[:-10])
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="checksum"):
        lab.load_factor_net()
    damaged.unlink()
    with pytest.raises(FileNotFoundError, match="train_factor_net"):
        lab.load_factor_net()


def test_style_swap_scores_reach_one_when_the_swapped_range_is_everything(monkeypatch):
    G = _tiny_stylegan()
    from ganlib.experiments import stylegan as lab

    net = lab.load_factor_net()
    monkeypatch.setattr(runs, "coarse_fine_ranges", lambda G: {"coarse": (0, G.num_layers), "fine": (0, 0)})
    out = runs.style_swap_scores(G, net, n=64)
    assert out["coarse_swap_changes_shape"] == 1.0  # every style from B: the image *is* B, whose shape differs
    assert out["fine_swap_changes_shape"] == 0.0    # nothing swapped: A stays A
