import pytest
import torch

import ganlib
from ganlib import runtime


def test_scale_defaults_to_small_on_cpu(monkeypatch):
    monkeypatch.delenv("GANLIB_SCALE", raising=False)
    monkeypatch.setenv("GANLIB_DEVICE", "cpu")
    assert ganlib.scale() == "small"


def test_scale_reads_env_and_picks_value(monkeypatch):
    monkeypatch.setenv("GANLIB_SCALE", "FULL")
    assert ganlib.scale() == "full"
    assert ganlib.by_scale(smoke=1, small=2, full=3) == 3
    assert ganlib.by_scale(smoke=1, small=2, full=3, current="smoke") == 1


def test_unknown_scale_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("GANLIB_SCALE", "huge")
    with pytest.raises(ValueError, match="smoke, small, full"):
        ganlib.scale()


def test_device_override_and_bad_names(monkeypatch):
    monkeypatch.setenv("GANLIB_DEVICE", "cpu")
    assert ganlib.device() == torch.device("cpu")
    monkeypatch.setenv("GANLIB_DEVICE", "banana")
    with pytest.raises(ValueError, match="GANLIB_DEVICE"):
        ganlib.device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("GANLIB_DEVICE", "cuda")
        with pytest.raises(ValueError, match="no CUDA"):
            ganlib.device()


def test_device_auto_is_cuda_when_available(monkeypatch):
    monkeypatch.delenv("GANLIB_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if runtime._mps_available() else "cpu")
    assert ganlib.device().type == expected


def test_seed_everything_repeats_draws():
    ganlib.seed_everything(7)
    a = torch.randn(5)
    ganlib.seed_everything(7)
    assert torch.equal(a, torch.randn(5))
    with pytest.raises(ValueError):
        ganlib.seed_everything(-1)


def test_eval_mode_switches_inside_and_restores_each_modules_own_mode():
    bn, drop = torch.nn.BatchNorm1d(3), torch.nn.Dropout(0.5)
    drop.eval()  # mixed modes going in: bn training, drop eval
    x = torch.randn(8, 3) * 5 + 2
    with runtime.eval_mode(bn, drop):
        assert not bn.training and not drop.training
        out = bn(x)
    # in eval, BatchNorm uses its running statistics (initially mean 0, var 1), so it barely changes x ...
    assert torch.allclose(out, x / (1 + bn.eps) ** 0.5, atol=1e-5)
    assert torch.equal(bn.running_mean, torch.zeros(3))  # ... and does not update them
    assert bn.training and not drop.training
    with pytest.raises(RuntimeError, match="boom"):
        with runtime.eval_mode(bn):
            raise RuntimeError("boom")
    assert bn.training  # restored when the block raises, too
