"""The benchmark's pieces on tiny settings: metrics, data mixes, models, and the --quick CLI path.

The full benchmark (`python -m lib_w2sd.bench`) is evidence, not a test; these check that the
instruments it measures with are right.
"""

import numpy as np
import pytest
import torch

from lib_w2sd.bench import analytic, data, experiments, metrics, models, versus
from lib_w2sd.bench.autoguidance import Autoguided
from lib_w2sd.bench.cache import Cache
from lib_w2sd.errors import InvalidOption
from lib_w2sd.mixtures import GaussianMixture

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


def test_frechet_distance_and_the_mixture_judge_work_in_one_dimension():
    a = RNG.normal(size=(20000, 1))
    assert metrics.frechet_distance(a, 2 * RNG.normal(size=(20000, 1)) + 1) == pytest.approx(2, rel=0.05)
    judge = analytic.MixtureJudge("1-D", 2000)
    same = judge.score(torch.as_tensor(judge.reference))
    assert same.tv < 0.02 and same.fd == pytest.approx(0, abs=1e-9) and same.precision == same.recall == 1
    strong = analytic.mixture("1-D strong").sample(2000, torch.Generator().manual_seed(1))
    assert judge.score(strong).tv == pytest.approx(0.2, abs=0.03)  # 0.3 / 0.7 against 0.5 / 0.5


# ----------------------------------------------------------------------------- autoguidance


class Counted:
    def __init__(self, denoiser):
        self.denoiser, self.calls = denoiser, 0

    def __call__(self, x, sigma, **extra_args):
        self.calls += 1
        return self.denoiser(x, sigma, **extra_args)


def _karras(steps, sigma_min=0.01, sigma_max=10.0):
    import k_diffusion.sampling as K

    return K.get_sigmas_karras(steps, sigma_min, sigma_max)


def _sample(name, model, x, sigmas):
    import k_diffusion.sampling as K

    torch.manual_seed(7)  # the ancestral sampler's noise
    with torch.no_grad():
        return getattr(K, f"sample_{name}")(model, x, sigmas, disable=True)


@pytest.mark.parametrize("name", ["euler", "euler_ancestral", "heun", "dpmpp_2m"])
def test_autoguidance_with_an_identical_weak_model_is_plain_sampling_exactly(name):
    """A weak model equal to the strong one (a copy with the same weights) makes the guided
    denoiser the strong one bit for bit, on a real EDM denoiser and the real samplers."""
    import copy

    torch.manual_seed(0)
    strong = models.EDMDenoiser(models.DenoiserNet(64, 32, 2), sigma_data=0.6).eval()
    weak = Counted(copy.deepcopy(strong))
    x = torch.randn(16, 64) * 10
    guided = _sample(name, Autoguided(strong, weak, 2.0), x, _karras(8))
    assert weak.calls > 0  # the weak model really took part
    assert torch.equal(guided, _sample(name, strong, x, _karras(8)))


def test_guidance_one_is_the_strong_model_alone_and_a_bad_weight_is_named():
    ideal, strong, weak = (Counted(m.denoise) for m in analytic.BEDS["1-D"]())
    x = torch.randn(64, 1) * 10
    assert torch.equal(_sample("euler", Autoguided(strong, weak, 1.0), x, _karras(6)),
                       _sample("euler", strong.denoiser, x, _karras(6)))
    assert weak.calls == 0  # as edm2: the guiding model is not called at w == 1
    with pytest.raises(InvalidOption, match="'guidance'"):
        Autoguided(strong, weak, float("nan"))


def test_autoguided_gaussians_are_the_gaussian_of_the_extrapolated_mean():
    """D_s, D_w of N(mu_s, s^2 I) and N(mu_w, s^2 I) are linear in their means, so the guided
    denoiser is exactly the one of N(mu_w + w (mu_s - mu_w), s^2 I): sampling it is sampling that."""
    mu_s, mu_w, std, w = [1.0, -0.5], [2.0, 0.5], 0.4, 2.5
    strong, weak = (GaussianMixture.of([mu], [1.0], std) for mu in (mu_s, mu_w))
    target = GaussianMixture.of([[b + w * (a - b) for a, b in zip(mu_s, mu_w)]], [1.0], std)  # (-1.5, -3)
    guided = Autoguided(strong.denoise, weak.denoise, w)
    gen = torch.Generator().manual_seed(0)
    x, sigma = torch.randn(100, 2, generator=gen, dtype=torch.float64), torch.rand(100, dtype=torch.float64) * 5
    assert torch.allclose(guided(x, sigma), target.denoise(x, sigma), atol=1e-12)
    x = torch.randn(4000, 2, generator=gen, dtype=torch.float64) * 20
    out = _sample("heun", guided, x, _karras(40, 0.002, 20.0))
    assert torch.allclose(out, _sample("heun", target.denoise, x, _karras(40, 0.002, 20.0)), atol=1e-10)
    assert torch.allclose(out.mean(0), target.means[0], atol=0.05)
    assert torch.allclose(out.std(0), torch.full((2,), std, dtype=torch.float64), rtol=0.05)


def test_autoguided_gaussians_of_two_widths_follow_the_closed_form_flow():
    """Strong N(0, a^2), weak N(0, b^2): D_g = x (w a^2/(a^2+sigma^2) + (1-w) b^2/(b^2+sigma^2)), and
    the probability-flow ODE dx/dsigma = (x - D_g)/sigma integrates to a fixed factor from sigma_max
    to 0: a^w b^(1-w) / ((a^2 + sigma_max^2)^(w/2) (b^2 + sigma_max^2)^((1-w)/2)). For a = 1, b = 2,
    w = 2 the samples come out with std a^w b^(1-w) = 0.5: narrower than the strong model's."""
    a, b, w, sigma_max = 1.0, 2.0, 2.0, 20.0
    strong, weak = (GaussianMixture.of([[0.0]], [1.0], s) for s in (a, b))
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)[:, None] * sigma_max
    factor = a ** w * b ** (1 - w) / ((a**2 + sigma_max**2) ** (w / 2) * (b**2 + sigma_max**2) ** ((1 - w) / 2))
    guided = Autoguided(strong.denoise, weak.denoise, w)
    errors = [float((_sample("heun", guided, x, _karras(n, 1e-4, sigma_max)) - x * factor).abs().max()
                    / (x * factor).abs().max()) for n in (80, 320)]
    assert errors[1] < 5e-4 and errors[1] < errors[0] / 10  # Heun converges to it at second order
    assert factor * sigma_max == pytest.approx(0.5, rel=0.01)  # x_T has std sigma_max


# ----------------------------------------------------------------------------- W2SD vs autoguidance


def test_call_plans_hit_the_budget():
    assert versus.plan("euler", 18, False, "none") == (18, 0)
    assert versus.plan("euler", 18, True, "none") == (9, 0)
    assert versus.plan("euler", 18, False, "most") == (8, 5)  # 8 + 2 * 5
    assert versus.plan("euler", 18, False, "half") == (14, 2)
    assert versus.plan("euler", 36, True, "most") == (9, 6)  # 2 * 9 + 3 * 6
    assert versus.plan("euler", 19, True, "none") is None
    assert versus.plan("heun", 21, False, "most") == (6, 5)  # 11 + 2 * 5 (heun: 2n - 1)


def test_every_method_spends_its_budget_and_identical_pairs_give_plain_samples(tmp_path):
    """The Runner on the 1-D bed (exact denoisers, nothing trained): counted calls equal each
    point's budget, and weak == strong leaves plain sampling bit for bit, W2SD on autoguidance too."""
    cfg = experiments.BenchConfig(n_samples=64, seeds=(0,), versus_budgets=(12,))
    runner = experiments.Runner(cfg, Cache(tmp_path))
    bed = versus.beds(cfg)[1]
    rows = versus._budget_rows(cfg, bed, "euler", 12)
    assert {r.info["method"] for r in rows} == set(versus.METHODS)
    for row in rows:
        assert runner.result(row.specs[0])["calls"] == 12, row.label
    combo = next(r.specs[0] for r in rows if r.info["method"] == versus.COMBO)
    same = dict(model=bed.strong, sampler="euler", steps=combo.steps, seed=0)
    identical = experiments.RunSpec(**same, guide=bed.strong, guidance=1.5, weak=bed.strong,
                                    reflect_steps=combo.reflect_steps)
    assert torch.equal(runner._sample(identical)[0], runner._sample(experiments.RunSpec(**same))[0])
    assert not torch.equal(runner._sample(combo)[0], runner._sample(experiments.RunSpec(**same))[0])


# ----------------------------------------------------------------------------- the CLI


def test_quick_cli_runs_end_to_end_and_reuses_its_cache(tmp_path, capsys):
    from lib_w2sd.bench import cli

    args = ["--quick", "--jobs", "1", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert cli.main(args) == 0
    first = capsys.readouterr().out
    assert "model(s)" in first and "run(s)" in first and "(d) Gain vs reflect steps" in first
    assert "PASS  euler: gap of identical models" in first
    assert "(e) W2SD vs autoguidance at equal denoiser calls: digits" in first
    assert "(g) W2SD vs autoguidance at equal denoiser calls: 2-D mixture" in first
    assert "W2SD vs autoguidance side by side" in first
    assert "PASS  (f) every point spends exactly its budget" in first
    assert "FAIL  (e) every point" not in first and "identical pair" in first
    assert not [line for line in first.splitlines() if "identical pair" in line and line.startswith("FAIL")]
    for name in ("a_samples_and_classes", "b_equal_calls", "c_difference", "d_knobs", "e_versus_autoguidance"):
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 1000
    assert cli.main(args) == 0
    second = capsys.readouterr().out
    assert "model(s)" not in second and "run(s)" not in second  # nothing trained or sampled again
    checks = lambda out: out.split("Checks")[1].split("figures and tables.md")[0]  # noqa: E731
    assert checks(second) == checks(first)
