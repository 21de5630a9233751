import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ganlib import data, losses, viz  # noqa: E402
from ganlib.models import MLPDiscriminator, MLPGenerator  # noqa: E402
from ganlib.train import Trainer  # noqa: E402


def test_plot_2d_arrows_point_where_the_generator_loss_decreases():
    # D(x) = x_0: moving a fake point along +x_0 raises D and lowers the non-saturating loss.
    D = MLPDiscriminator(hidden=2, depth=1)
    with torch.no_grad():
        for p in D.parameters():
            p.zero_()
        D.net[0].weight[0, 0] = 1.0
        D.net[0].bias[0] = 10.0  # keep the ReLU open
        D.net[2].weight[0, 0] = 1.0
    ax = viz.plot_2d(torch.randn(50, 2), torch.randn(50, 2), D, losses.generator_nonsaturating, arrows=50)
    quiver = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)][0]
    assert (quiver.U > 0).all() and torch.allclose(torch.as_tensor(quiver.V), torch.zeros(50), atol=1e-6)
    plt.close("all")


def test_image_grid_and_history_reject_bad_input():
    viz.image_grid(torch.rand(4, 3, 8, 8) * 2 - 1, nrow=2)
    with pytest.raises(ValueError, match="1 or 3"):
        viz.image_grid(torch.rand(4, 2, 8, 8))
    with pytest.raises(KeyError, match="available"):
        viz.plot_history({"step": [1], "d_loss": [0.1]}, keys=("g_loss",))
    plt.close("all")


def test_live_plot_is_static_headless_and_draws_once_at_the_end(monkeypatch):
    monkeypatch.setenv("CI", "true")
    calls = []
    hook = viz.LivePlot(lambda tr, fig: calls.append(tr.step), every=1)
    assert not hook.live
    ring = data.toy("ring")
    Trainer(MLPGenerator(hidden=8, depth=1), MLPDiscriminator(hidden=8, depth=1), data.SamplerSource(ring.sample, 8),
            d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating, hooks=[hook], progress=False,
            device=torch.device("cpu")).fit(3)
    assert calls == [3]
    plt.close("all")
