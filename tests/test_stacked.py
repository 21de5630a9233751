"""Stacked MNIST: labels encode/decode the (red, green, blue) digit triple, and images carry those digits."""
import math

import pytest
import torch

import repo_files
from ganlib.data import SamplerSource, mnist
from ganlib.data.stacked import N_MODES, decode, encode, images_only, stacked_mnist, stacked_sampler


def test_decode_known_labels():
    got = decode(torch.tensor([0, 7, 42, 305, 999]))
    expected = torch.tensor([[0, 0, 0], [0, 0, 7], [0, 4, 2], [3, 0, 5], [9, 9, 9]])
    assert torch.equal(got, expected)


def test_encode_decode_roundtrip_covers_all_modes():
    labels = torch.arange(N_MODES)
    digits = decode(labels)
    assert torch.equal(encode(digits), labels)
    assert len({tuple(d.tolist()) for d in digits}) == 1000


def test_each_channel_is_a_bundled_digit_of_the_decoded_class():
    train, train_labels = mnist(28, "train")
    images, labels = stacked_mnist(40, seed=3)
    assert images.shape == (40, 3, 28, 28) and images.min() >= -1 and images.max() <= 1
    flat = train.flatten(1)
    for img, triple in zip(images, decode(labels)):
        for c in range(3):
            match = (flat == img[c].flatten()).all(dim=1).nonzero().flatten()
            assert len(match) >= 1, "each channel must be one of the bundled digits"
            assert int(train_labels[match[0]]) == int(triple[c])


def test_sampler_is_deterministic_and_32px_works():
    a, la = stacked_mnist(16, size=32, seed=5)
    b, lb = stacked_mnist(16, size=32, seed=5)
    assert a.shape == (16, 3, 32, 32) and torch.equal(a, b) and torch.equal(la, lb)
    source = SamplerSource(images_only(stacked_sampler()), batch_size=8, seed=1)
    assert torch.equal(source.batch(4), source.batch(4)) and source.batch(4).shape == (8, 3, 28, 28)


def test_bad_input():
    with pytest.raises(ValueError, match="999"):
        decode(torch.tensor([1000]))
    with pytest.raises(ValueError, match="\\(N, 3\\)"):
        encode(torch.zeros(4, 2, dtype=torch.long))


def _benchmark_module():
    return repo_files.load("benchmarks/stacked_mnist.py", "stacked_mnist_benchmark")


def test_pacgan_packing_pairs_consecutive_samples():
    from ganlib.models.dcgan import Discriminator

    bench = _benchmark_module()
    D = Discriminator(28, 6, 8).eval()
    packed = bench.Packed(D, pac=2)
    x = torch.randn(4, 3, 28, 28)
    by_hand = D(torch.stack([torch.cat([x[0], x[1]]), torch.cat([x[2], x[3]])]))
    torch.testing.assert_close(packed(x), by_hand)
    with pytest.raises(ValueError, match="multiple of pac"):
        packed(x[:3])


@pytest.mark.parametrize("model", ["dcgan", "pacdcgan2"])
def test_benchmark_smoke_run_reports_modes_and_kl(model):
    result = _benchmark_module().run(model, "smoke")
    assert set(result) == {"modes", "kl", "samples", "steps", "batch", "width", "seed", "scale", "seconds",
                           "cpu_seconds", "kind"}
    assert result["kind"] == "model" and result["batch"] == 16 and result["width"] == 8 and result["seed"] == 0
    assert 1 <= result["modes"] <= 1000 and 0 <= result["kl"] <= round(math.log(1000), 4) and result["steps"] == 4
