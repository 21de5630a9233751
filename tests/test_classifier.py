"""The shipped MNIST classifier and the scores on top of it (checksum, accuracy, FD, histograms, KL)."""
import hashlib
import math
import shutil

import numpy as np
import pytest
import torch

from ganlib.data import mnist
from ganlib.data.stacked import stacked_mnist
from ganlib.metrics import classifier as clf
from ganlib.metrics import frechet_distance


def test_weights_load_with_weights_only_and_checksum_matches():
    path = clf.classifier_path()
    assert path.stat().st_size <= 1_000_000
    assert hashlib.sha256(path.read_bytes()).hexdigest() == clf.CLASSIFIER_SHA256
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = clf.MnistCNN()
    net.load_state_dict(state)  # strict: every key present, no extra ones


def test_ship_weights_records_the_files_sha256_where_the_loader_checks_it(tmp_path):
    source = tmp_path / "module.py"
    source.write_text('X = 1\nNET_SHA256 = "' + "0" * 64 + '"\n')
    net = torch.nn.Linear(3, 2)
    digest = clf.ship_weights(net, tmp_path / "net.pt", source, "NET_SHA256")
    assert digest == hashlib.sha256((tmp_path / "net.pt").read_bytes()).hexdigest()
    assert source.read_text() == f'X = 1\nNET_SHA256 = "{digest}"\n'
    state = torch.load(tmp_path / "net.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    clf.check_sha256(tmp_path / "net.pt", digest, "fix it")  # the recorded one passes
    with pytest.raises(ValueError, match="net.pt does not match the recorded checksum.*; fix it"):
        clf.check_sha256(tmp_path / "net.pt", "f" * 64, "fix it")
    with pytest.raises(RuntimeError, match="OTHER_SHA256"):
        clf.ship_weights(net, tmp_path / "net.pt", source, "OTHER_SHA256")


def test_heldout_accuracy_at_least_98_percent():
    x, y = mnist(28, "heldout")
    assert clf.conditional_accuracy(x, y) >= 0.98
    # With every label shifted by one the same predictions must be almost always "wrong".
    assert clf.conditional_accuracy(x, (y + 1) % 10) <= 0.02


def test_returns_eval_mode_and_32px_is_the_padded_28px():
    net = clf.load_classifier("cpu")
    assert not net.training
    x28, _ = mnist(28, "heldout")
    x32, _ = mnist(32, "heldout")
    f28, f32 = clf.features(x28[:50]), clf.features(x32[:50])
    assert f28.shape == (50, clf.NUM_FEATURES)
    torch.testing.assert_close(f28, f32)  # mnist(size=32) pads by 2 px; the classifier crops them off
    assert net(x28[:4]).shape == (4, 10)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="Stacked MNIST"):
        clf.features(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="28, 28"):
        clf.features(torch.zeros(2, 1, 64, 64))


def test_missing_or_corrupt_weights_give_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    monkeypatch.setattr(clf, "_CACHE", {})
    with pytest.raises(FileNotFoundError, match="git checkout"):
        clf.load_classifier("cpu")
    shutil.copy(_shipped(), tmp_path / clf.CLASSIFIER_FILE)
    clf.load_classifier("cpu")  # an intact copy loads
    monkeypatch.setattr(clf, "_CACHE", {})
    blob = bytearray((tmp_path / clf.CLASSIFIER_FILE).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / clf.CLASSIFIER_FILE).write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="corrupt"):
        clf.load_classifier("cpu")


def _shipped():
    from pathlib import Path
    return Path(clf.__file__).resolve().parents[2] / "data" / clf.CLASSIFIER_FILE


def _exact_moments(n, mean, cov, seed):
    """n samples whose sample mean and (unbiased) covariance are exactly ``mean`` and ``cov``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whiten: cov(z) = I exactly
    return torch.from_numpy(z @ np.linalg.cholesky(cov).T + mean)


def test_frechet_distance_gaussian_with_itself_is_zero():
    a = _exact_moments(400, np.zeros(5), np.diag([1.0, 2.0, 3.0, 4.0, 5.0]), seed=1)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    # For diagonal covariances, Tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt(a) - sqrt(b))^2, by hand.
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25, 2.0]), np.array([9.0, 1.0, 0.25, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    a = _exact_moments(300, mu1, np.diag(var1), seed=2)
    b = _exact_moments(500, mu2, np.diag(var2), seed=3)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_classifier_fd_floor_and_ordering():
    x, _ = mnist(28, "all")
    assert clf.classifier_fd(x[:300], x[:300]) == pytest.approx(0.0, abs=1e-6)
    floor = clf.real_floor(n=500)
    noise = torch.rand(500, 1, 28, 28) * 2 - 1
    assert 0 < floor < clf.classifier_fd(noise, x[:500])
    with pytest.raises(ValueError, match="disjoint"):
        clf.real_floor(n=4000)


def test_class_histogram_and_kl_to_uniform():
    x, y = mnist(28, "heldout")  # 100 per class
    hist = clf.class_histogram(x)
    assert hist.sum().item() == pytest.approx(1.0)
    assert torch.all((hist - 0.1).abs() <= 0.02)
    assert clf.kl_to_uniform(torch.full((10,), 0.1, dtype=torch.float64)) == pytest.approx(0.0, abs=1e-12)
    assert clf.kl_to_uniform(torch.eye(10)[3]) == pytest.approx(math.log(10))
    expected = 0.75 * math.log(0.75 * 2) + 0.25 * math.log(0.25 * 2)
    assert clf.kl_to_uniform(torch.tensor([0.75, 0.25])) == pytest.approx(expected)
    ones = x[y == 1][:20]
    assert clf.kl_to_uniform(clf.class_histogram(ones)) == pytest.approx(math.log(10), abs=0.2)
    with pytest.raises(ValueError, match="sum to 1"):
        clf.kl_to_uniform(torch.tensor([0.5, 0.6]))


def test_stacked_mode_stats_on_real_stacked_digits():
    images, labels = stacked_mnist(600, split="heldout", seed=0)
    predicted = clf.stacked_labels(images)
    assert (predicted == labels).double().mean() >= 0.98 ** 3 - 0.03
    stats = clf.stacked_mode_stats(images)
    true_counts = torch.bincount(labels, minlength=1000)
    assert abs(stats["modes"] - int((true_counts > 0).sum())) <= 20
    assert stats["counts"].sum() == 600
