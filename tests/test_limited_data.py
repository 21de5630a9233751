"""Chapter 10's limited-data experiment: the subset, the scores it records, and that the augmentation is applied."""
import pytest
import torch

from ganlib.data import mnist
from ganlib.experiments import limited_data as ld

TINY = dict(width=8, batch_size=8, every=2, n_eval=32, device=torch.device("cpu"))


def test_trains_on_exactly_the_chosen_digits_and_records_d_on_train_and_heldout():
    out = ld.train_limited(40, 4, None, **TINY)
    x, _ = mnist(28, "train")
    chosen = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:40]]
    assert torch.equal(out["trainer"].data.x, chosen)  # the run sees these 40 digits and no others
    rec = out["records"]
    assert rec["step"] == [2, 4]
    for d_train, d_held, gap in zip(rec["d_train"], rec["d_heldout"], rec["gap"]):
        assert 0 < d_train < 1 and 0 < d_held < 1 and gap == pytest.approx(d_train - d_held)
    assert out["samples"].shape == (64, 1, 28, 28)
    assert ld.summary(out)["step"] == 4


def test_same_seed_same_run_and_the_policy_changes_training():
    a, b = ld.train_limited(32, 3, ld.POLICY, **TINY), ld.train_limited(32, 3, ld.POLICY, **TINY)
    plain = ld.train_limited(32, 3, None, **TINY)
    assert torch.equal(a["samples"], b["samples"])
    assert not torch.equal(a["samples"], plain["samples"])  # D saw augmented batches, so G got other gradients


@pytest.mark.parametrize("n", [0, 8, 5000, 2.5])
def test_nonsense_subset_sizes_are_refused(n):
    with pytest.raises(ValueError, match="n_images"):
        ld.train_limited(n, 2, None, **TINY)
