"""The playground's logic, driven by setting control values in the kernel (no front end)."""
import pytest

pytest.importorskip("ipywidgets")

from ganlib.widgets.playground import LOSS_PRESETS, Playground  # noqa: E402


@pytest.fixture
def pg():
    return Playground(steps=100, live=False)


def test_choosing_a_loss_loads_its_published_settings(pg):
    pg.loss.value = "lsgan"  # the BCE and least-squares losses: Adam (0.5, 0.999) at the course's toy lr 1e-3
    cfg = pg.config()
    assert (cfg.optimizer, cfg.betas, cfg.n_critic) == ("adam", (0.5, 0.999), 1)
    assert cfg.lr_g == pytest.approx(1e-3) and cfg.lr_d == pytest.approx(1e-3)
    pg.loss.value = "wgan"
    cfg = pg.config()
    assert (cfg.loss, cfg.optimizer, cfg.n_critic) == ("wgan", "rmsprop", 5)
    assert cfg.lr_d == pytest.approx(5e-5) and cfg.lr_g == pytest.approx(5e-5)
    pg.loss.value = "wgan_gp"
    cfg = pg.config()
    assert (cfg.optimizer, cfg.betas, cfg.n_critic, cfg.gp_lambda) == ("adam", (0.5, 0.9), 5, 0.1)
    assert cfg.lr_d == pytest.approx(1e-4) and cfg.lr_d == pytest.approx(LOSS_PRESETS["wgan_gp"]["lr_d"])


def test_controls_map_onto_the_config(pg):
    pg.dataset.value = "grid"
    pg.leaky.value, pg.ema.value, pg.decay.value = False, True, False
    pg.n_critic.value, pg.seed.value = 3, 7
    cfg = pg.config()
    assert (cfg.dataset, cfg.d_activation, cfg.ema_decay, cfg.lr_decay, cfg.n_critic, cfg.seed) == (
        "grid", "relu", 0.99, 0.0, 3, 7)


def test_soft_labels_only_for_bce_losses(pg):
    pg.soft.value = True
    assert pg.config().soft_labels
    pg.loss.value = "lsgan"
    assert pg.soft.disabled and not pg.config().soft_labels


def test_train_button_trains_and_updates_the_counter(pg):
    pg.dataset.value = "grid"
    pg.button.click()  # what pressing the button does
    assert pg.result is not None and pg.result.config.steps == 100
    assert pg.result.trainer.step == 100
    assert "/ 25 modes" in pg.status.value and f"{pg.result.stats['modes']} / 25" in pg.status.value
    assert not pg.button.disabled
    assert pg._fig is not None


def test_counter_text_handles_no_high_quality_samples():
    text = Playground.counter_text({"modes": 0, "hq": 0.0, "reverse_kl": float("inf")}, 8)
    assert "0 / 8 modes" in text and "inf" in text


def test_live_redraws_during_training_do_not_break():
    # in JupyterLab the figure is redrawn every redraw_every steps; several redraws in one run
    pg = Playground(steps=100, redraw_every=10, live=True)
    result = pg.train(steps=30)
    assert result.trainer.step == 30 and len(pg._tracker.rows) == 3
