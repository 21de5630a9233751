"""What the widgets show, checked in the kernel: exact control values, one figure drawn into the widget's own
output at once, no layout warnings, and the one live-drawing switch. tests/browser/ checks the same in a page."""
import io
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("ipywidgets")

from ganlib import viz  # noqa: E402
from ganlib.experiments.toy import LOSSES  # noqa: E402
from ganlib.models.stylegan import StyleGenerator  # noqa: E402
from ganlib.widgets.playground import LEARNING_RATES, LOSS_PRESETS, Playground  # noqa: E402
from ganlib.widgets.stylegan import NoiseExplorer, StyleMixingExplorer, TruncationExplorer  # noqa: E402


@pytest.fixture
def shown(monkeypatch):
    """Everything ``IPython.display.display`` is handed, instead of printing it."""
    import IPython.display

    items = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, *a, **k: items.append(obj))
    yield items
    plt.close("all")


@pytest.fixture
def live(monkeypatch):
    monkeypatch.setenv("GANLIB_LIVE", "1")


def tiny_G():
    torch.manual_seed(0)
    return StyleGenerator(z_dim=8, w_dim=8, mapping_depth=2, resolution=8, img_channels=3, fmap_base=32,
                          fmap_max=4, const_init="randn").eval()


def png_images(items):
    from IPython.display import Image
    return [item for item in items if isinstance(item, Image) and item.data[:8] == b"\x89PNG\r\n\x1a\n"]


# -- 1a: the playground's learning rates hold every preset exactly --------------------------------------


def test_every_preset_learning_rate_is_on_the_sliders_grid():
    pg = Playground(steps=10, live=False)
    for preset in LOSS_PRESETS.values():
        for key in ("lr_g", "lr_d"):
            assert preset[key] in LEARNING_RATES
            assert preset[key] in [value for _label, value in pg.lr_g.options]


def test_learning_rates_are_exact_after_every_preset_change():
    pg = Playground(steps=10, live=False)
    for loss in list(LOSSES) + ["wgan", "ns"]:  # ends as 05b's last cell does: WGAN, then back to NS-GAN
        pg.loss.value = loss
        cfg = pg.config()
        assert (cfg.lr_g, cfg.lr_d, cfg.n_critic) == (LOSS_PRESETS[loss]["lr_g"], LOSS_PRESETS[loss]["lr_d"],
                                                      LOSS_PRESETS[loss]["n_critic"]), loss
    assert pg.lr_g.label == "1e-3"  # what the page shows is the value itself, not a rounding of it


def test_steps_below_one_hundred_are_kept():
    pg = Playground(steps=20, live=False)
    assert pg.steps.value == 20 and pg.config().steps == 20
    with pytest.raises(ValueError, match="steps"):
        Playground(steps=0, live=False)


# -- 1d: one switch for live drawing ------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [("1", True), ("on", True), ("0", False), ("off", False)])
def test_ganlib_live_forces_live_drawing_either_way(monkeypatch, value, expected):
    monkeypatch.setenv("GANLIB_SCALE", "smoke")
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GANLIB_LIVE", value)
    assert viz.live_updates_wanted() is expected


def test_without_ganlib_live_smoke_and_scripts_draw_statically(monkeypatch):
    monkeypatch.delenv("GANLIB_LIVE", raising=False)
    monkeypatch.setenv("GANLIB_SCALE", "smoke")
    assert viz.live_updates_wanted() is False


def test_an_unknown_ganlib_live_value_names_the_choices(monkeypatch):
    monkeypatch.setenv("GANLIB_LIVE", "maybe")
    with pytest.raises(ValueError, match="GANLIB_LIVE='maybe'.*1.*0"):
        viz.live_updates_wanted()


def test_live_playground_draws_each_training_into_its_own_output(live, shown):
    pg = Playground(steps=20, redraw_every=10)
    assert pg.live
    pg.show()
    assert shown == [pg.widget]
    pg.loss.value = "lsgan"
    pg.button.click()
    images = png_images(shown)
    assert len(images) == 3  # steps 10 and 20 while training, and the final figure
    assert "LSGAN" in pg._fig.axes[0].get_title() and "lr G 1e-3" in pg._fig.axes[0].get_title()
    assert plt.get_fignums() == []  # nothing left open to reappear at the next redraw


def test_headless_playground_displays_no_widget(monkeypatch, shown):
    monkeypatch.setenv("GANLIB_LIVE", "0")
    Playground(steps=10).show()
    assert shown == []


# -- 1b: an explorer draws into its own output at once, one figure only -----------------------------------


@pytest.mark.parametrize("make, control, value", [
    (lambda G: TruncationExplorer(G, seeds=range(4), psi=0.5), "psi", 0.8),
    (lambda G: StyleMixingExplorer(G, row_seeds=(1, 2), col_seeds=(3, 4)), "rows", "1, 2, 9"),
    (lambda G: NoiseExplorer(G, seed=1, draws=4), "seed", 2)], ids=["truncation", "mixing", "noise"])
def test_live_explorer_shows_its_image_inside_the_widget_before_any_control_moves(live, shown, make, control,
                                                                                  value):
    explorer = make(tiny_G())
    assert explorer.show() is None
    assert len(png_images(shown)) == 1 and shown[-1] is explorer.widget  # image drawn first, then the widget
    explorer.controls[control].value = value
    assert len(png_images(shown)) == 2  # one redraw, replacing the image (clear_output) ...
    assert plt.get_fignums() == []  # ... and no figure left open, so no second figure appears later


def test_live_truncation_redraw_replaces_the_image_in_place(live, monkeypatch):
    calls = []
    monkeypatch.setattr(viz, "show_in", lambda output, fig: (calls.append((output, fig.axes[0].get_title())),
                                                             plt.close(fig)))
    trunc = TruncationExplorer(tiny_G(), seeds=range(4), psi=0.5)
    import IPython.display
    monkeypatch.setattr(IPython.display, "display", lambda obj, *a, **k: None)
    trunc.show()
    trunc.controls["psi"].value = 0.8
    assert [(out is trunc.output, title.split(",")[0]) for out, title in calls] == [(True, "ψ = 0.50"),
                                                                                   (True, "ψ = 0.80")]


def test_headless_explorer_draws_one_static_figure_and_no_widget(monkeypatch, shown):
    monkeypatch.setenv("GANLIB_LIVE", "0")
    fig = TruncationExplorer(tiny_G(), seeds=range(4)).show()
    assert fig is not None and shown == []


def test_live_mixer_says_why_it_refuses_seeds_in_its_output(live, shown):
    mixer = StyleMixingExplorer(tiny_G(), row_seeds=(1, 2), col_seeds=(3, 4))
    mixer.controls["rows"].value = "1, two"
    assert shown[-1] == {"text/plain": "seeds must be whole numbers separated by commas, got '1, two'"}


# -- 1c: no layout warnings, whatever the seeds ------------------------------------------------------------


@pytest.mark.parametrize("rows, cols", [("1, 2, 3", "4, 5, 6, 7"), ("1", "4"), ("1, 2, 3, 8", "4"),
                                        ("5", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"), ("1, 2, 3, 4, 5, 6", "7, 8")])
def test_mixing_figure_renders_without_warnings_after_seed_edits(rows, cols):
    mixer = StyleMixingExplorer(tiny_G())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a layout warning fails the test
        mixer.controls["rows"].value, mixer.controls["cols"].value = rows, cols
        for crossover in (0, 2, mixer.G.num_layers):
            mixer.controls["crossover"].value = crossover
            fig = mixer.figure()
            fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")  # layout runs at draw time
            plt.close(fig)
    assert mixer.images.shape[:2] == (len(rows.split(",")), len(cols.split(",")))


def test_noise_and_truncation_figures_render_without_warnings():
    G = tiny_G()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for explorer in (NoiseExplorer(G, draws=4), TruncationExplorer(G, seeds=range(8))):
            fig = explorer.figure()
            fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
            plt.close(fig)


# -- the image explorers of chapters 06-07 follow the same display rule ------------------------------------


def image_explorers():
    """(explorer, its control, a new value) for chapter 06's walk and chapter 07's class picker, built one by one."""
    from ganlib.models.cgan import ConditionalGenerator
    from ganlib.models.dcgan import Generator
    from ganlib.widgets.images import ClassPicker, LatentInterpolation

    torch.manual_seed(0)
    walk = LatentInterpolation(Generator(16, 28, 1, 8), seed_a=0, seed_b=1, frames=3)
    yield walk, walk.slider, 2
    picker = ClassPicker(ConditionalGenerator(4, 16, 32, 3, 8, "onehot"), n=4)
    yield picker, picker.dropdown, 3


def test_live_image_explorers_draw_into_their_output_before_display(live, shown):
    for explorer, control, value in image_explorers():
        explorer._ipython_display_()  # what IPython's display(walk), chapter 06, calls
        assert len(png_images(shown)) == 1 and shown[-1] is explorer._view(), type(explorer).__name__
        control.value = value
        assert len(png_images(shown)) == 2 and plt.get_fignums() == []
        shown.clear()


def test_headless_image_explorers_display_nothing(monkeypatch, shown):
    monkeypatch.setenv("GANLIB_LIVE", "0")
    for explorer, control, value in image_explorers():
        explorer._ipython_display_()
        control.value = value  # the logic still follows the control
        assert explorer.index == value if hasattr(explorer, "index") else explorer.label == value
    assert shown == []
