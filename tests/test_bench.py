"""The benchmark's pieces on tiny settings: metrics, data mixes, models, and the --quick CLI path.

The full benchmark (`python -m lib_w2sd.bench`) is evidence, not a test; these check that the
instruments it measures with are right.
"""

import numpy as np
import pytest
import torch

from lib_w2sd.bench import data, metrics, models

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as the bench itself uses: extra threads only fight on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- metrics


def test_frechet_distance_of_identical_gaussians_is_near_zero():
    a = RNG.normal(size=(4000, 4))
    b = RNG.normal(size=(4000, 4))
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-9)
    assert metrics.frechet_distance(a, b) < 0.05


def test_frechet_distance_matches_closed_form_and_grows_with_shift():
    a = RNG.normal(size=(20000, 3))
    dists = [metrics.frechet_distance(a, RNG.normal(size=(20000, 3)) + shift) for shift in (0.5, 1, 2)]
    # equal covariances: the distance is the squared shift of the means, summed over 3 axes
    assert dists == pytest.approx([3 * 0.25, 3 * 1, 3 * 4], rel=0.05, abs=0.03)
    scaled = metrics.frechet_distance(a, 2 * RNG.normal(size=(20000, 3)))
    assert scaled == pytest.approx(3 * (2 - 1) ** 2, rel=0.05)  # tr(S1 + S2 - 2 sqrt(S1 S2))


def test_class_histogram_and_total_variation():
    hist = metrics.class_histogram(np.array([0, 0, 1, 3]), 4)
    assert hist.tolist() == [0.5, 0.25, 0, 0.25]
    assert metrics.total_variation(hist, hist) == 0
    assert metrics.total_variation([1, 0], [0, 1]) == 1
    assert metrics.total_variation([0.5, 0.5, 0], [0.25, 0.25, 0.5]) == pytest.approx(0.5)


def test_precision_recall_on_known_sets():
    real = RNG.normal(size=(500, 2))
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    far = real + 100
    assert metrics.precision_recall(real, far) == (0.0, 0.0)
    # samples piled into one corner of the real data: faithful (precision) but not diverse (recall)
    corner = real[real[:, 0] > 1][:, None].repeat(5, 1).reshape(-1, 2)[:500] + 0.01
    precision, recall = metrics.precision_recall(real, corner)
    assert precision > 0.9 and recall < 0.3


# ----------------------------------------------------------------------------- data


def test_class_mix_is_balanced_at_zero_and_skewed_by_exp_skew():
    assert np.allclose(data.class_mix(0.0), 0.1)
    mix = data.class_mix(3.0)
    assert mix.sum() == pytest.approx(1) and np.all(np.diff(mix) < 0)
    assert mix[0] / mix[-1] == pytest.approx(np.exp(3.0))


def test_weighted_batches_follow_the_mix():
    y = torch.tensor([0] * 90 + [1] * 10)  # the data itself is skewed 9:1 ...
    mix = np.array([0.25, 0.75])  # ... the batches must be 1:3 anyway
    x = y[:, None].float()
    batch = next(data.weighted_batches(x, y, mix, 20000, torch.Generator().manual_seed(0)))
    assert float(batch.mean()) == pytest.approx(0.75, abs=0.02)


def test_digits_split_is_stratified_and_scaled():
    d = data.load_digits_split()
    assert d.train_x.shape[1] == 64 and float(d.train_x.min()) == -1 and float(d.train_x.max()) == 1
    counts = torch.bincount(d.ref_y, minlength=10)
    assert int(counts.max() - counts.min()) <= 5
    assert 0.5 < d.sigma_data < 1


# ----------------------------------------------------------------------------- models


def test_denoiser_preconditioning_passes_x_through_at_low_noise():
    model = models.EDMDenoiser(models.DenoiserNet(64, 32, 1), sigma_data=0.75)
    x = torch.randn(8, 64)
    with torch.no_grad():
        assert torch.allclose(model(x, torch.full((8,), 1e-4)), x, atol=1e-3)
        assert model(x, torch.full((8,), 10.0)).shape == x.shape


def test_tiny_training_run_lowers_the_loss():
    d = data.load_digits_split()
    spec = models.TrainSpec(width=32, depth=1, steps=120, batch=64, lr=3e-3, ema=0.9)
    _, losses = models.train_denoiser(d.train_x, d.train_y, data.class_mix(0), d.sigma_data, spec, 0)
    assert np.mean(losses[-30:]) < 0.8 * np.mean(losses[:10])


def test_judge_scores_the_real_reference_as_perfect():
    d = data.load_digits_split()
    clf = models.train_classifier(d.train_x, d.train_y, seed=0, epochs=3)
    judge = metrics.Judge(clf, d.ref_x, data.N_CLASSES)
    same = judge.score(d.ref_x)
    assert same.tv == 0 and same.fd == pytest.approx(0, abs=1e-6)
    assert same.precision == 1 and same.recall == 1
    ones_only = judge.score(d.ref_x[d.ref_y == 1])
    assert ones_only.tv > 0.7 and ones_only.fd > 1 and ones_only.recall < 0.3


# ----------------------------------------------------------------------------- the CLI


def test_quick_cli_runs_end_to_end_and_reuses_its_cache(tmp_path, capsys):
    from lib_w2sd.bench import cli

    args = ["--quick", "--jobs", "1", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert cli.main(args) == 0
    first = capsys.readouterr().out
    assert "model(s)" in first and "run(s)" in first and "(d) Gain vs reflect steps" in first
    assert "PASS  euler: gap of identical models" in first
    for name in ("a_samples_and_classes", "b_equal_calls", "c_difference", "d_knobs"):
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 1000
    assert cli.main(args) == 0
    second = capsys.readouterr().out
    assert "model(s)" not in second and "run(s)" not in second  # nothing trained or sampled again
    checks = lambda out: out.split("Checks")[1].split("figures and tables.md")[0]  # noqa: E731
    assert checks(second) == checks(first)
