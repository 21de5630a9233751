"""Shared test settings: CPU by default, gpu-marked tests skipped unless CUDA is present."""
import os

import matplotlib
import pytest
import torch

os.environ.setdefault("GANLIB_SCALE", "smoke")
# The tests draw off screen. Not through MPLBACKEND: nbval's kernels would inherit it and draw nothing inline.
matplotlib.use("Agg")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run scripts/gpu_check.sh on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> torch.device:
    """Run a test once on the CPU and once, gpu-marked (skipped without CUDA, see above), on CUDA."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _one_thread_per_worker():
    # pytest-xdist runs two workers on two cores; more threads each would only oversubscribe.
    torch.set_num_threads(1)
    yield
