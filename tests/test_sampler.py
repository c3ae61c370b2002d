"""wrap_sampler on the REAL k-diffusion samplers with exact Gaussian-mixture denoisers.

The 1-D mixture of W2SD.md: ideal 0.5/0.5, strong 0.3/0.7, weak 0.1/0.9 at -2/+2. W2SD must
move the left-mode mass toward 0.5 on every sampler, leave it where it is when weak == strong,
and push it below the weak model's when the roles are swapped.
"""

import inspect
import re

import k_diffusion.sampling as K
import pytest
import torch

import lib_w2sd
from lib_w2sd.catalog import WEBUI_SAMPLERS, is_fixed_range, sampler_function
from lib_w2sd.mixtures import paper_1d

IDEAL, STRONG, WEAK = paper_1d()
SIGMAS = K.get_sigmas_karras(20, 0.02, 20.0).double()
DPM_FAST_NFE = 30
N_SAMPLES = 3000
ALL = list(WEBUI_SAMPLERS)


class Counting:
    """A denoiser that counts its calls and the batch rows it saw."""

    def __init__(self, denoise):
        self.denoise, self.calls, self.sigmas = denoise, 0, []

    def __call__(self, x, sigma, **extra_args):
        self.calls += 1
        self.sigmas.append(float(sigma.reshape(-1)[0]))
        return self.denoise(x, sigma, **extra_args)


def sample(name, model, weak=None, seed=0, sigmas=SIGMAS, n=N_SAMPLES, callback=None, **options):
    fn, fixed = sampler_function(name)
    if weak is not None:
        fn = lib_w2sd.wrap_sampler(fn, weak, **options)
    torch.manual_seed(seed)
    x = torch.randn(n, 1, dtype=torch.float64) * float(sigmas[0])
    if is_fixed_range(name):
        out = fn(model, x, float(sigmas[-2]), float(sigmas[0]), DPM_FAST_NFE, disable=True, callback=callback, **fixed)
    else:
        out = fn(model, x, sigmas, disable=True, callback=callback, **fixed)
    return out, fn


def is_multistep(name):
    """Samplers whose steps inside the window differ from their plain steps: history restarts at
    each reflected step (LMS, DPM++ 2M/3M), DPM fast's third-order steps drop to second order."""
    return name in ("LMS", "DPM fast", "DPM++ 2M", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 3M SDE")


def left_mass(x):
    return float(IDEAL.mode_masses(x)[0])


@pytest.mark.parametrize("name", ALL)
def test_w2sd_moves_mass_toward_the_ideal(name):
    strong, _ = sample(name, STRONG.denoise)
    weak, _ = sample(name, WEAK.denoise)
    w2sd, _ = sample(name, STRONG.denoise, WEAK.denoise)
    same, _ = sample(name, STRONG.denoise, STRONG.denoise)
    swapped, _ = sample(name, WEAK.denoise, STRONG.denoise)
    assert 0.25 < left_mass(strong) < 0.36 and left_mass(weak) < 0.15  # the set-up itself
    assert left_mass(w2sd) > left_mass(strong) + 0.08, "W2SD must move mass toward the ideal 0.5"
    assert abs(left_mass(w2sd) - 0.5) < abs(left_mass(strong) - 0.5)
    assert abs(left_mass(same) - left_mass(strong)) < 0.03, "weak == strong must be (nearly) plain sampling"
    if not is_multistep(name):  # one-step samplers: the reflection itself is an exact identity
        assert torch.equal(same, strong)
    assert left_mass(swapped) < left_mass(weak), "a 'weak' model that is stronger must hurt"


@pytest.mark.parametrize("name", ALL)
def test_signature_is_the_samplers(name):
    fn, _ = sampler_function(name)
    wrapped = lib_w2sd.wrap_sampler(fn, WEAK.denoise)
    assert inspect.signature(wrapped) == inspect.signature(fn)
    assert list(inspect.signature(wrapped).parameters) == list(inspect.signature(fn).parameters)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("n_reflect", [0, 1, 5])
def test_one_strong_and_one_weak_call_per_reflected_step(name, n_reflect):
    plain_model = Counting(STRONG.denoise)
    sample(name, plain_model, n=8)
    model, weak = Counting(STRONG.denoise), Counting(WEAK.denoise)
    _, wrapped = sample(name, model, weak, n=8, reflect_steps=n_reflect)
    report = wrapped.last_report
    assert weak.calls == n_reflect == len(report.reflected_steps) == report.weak_calls == report.strong_calls
    if not is_fixed_range(name):  # DPM fast's third-order steps run at second order inside the window
        assert model.calls == plain_model.calls + n_reflect


class JointMixture:
    """Strong and weak mixture denoisers answered by one evaluation (GaussianMixture.denoise_reweighted),
    the analytic counterpart of one batched UNet call serving two conditions; counts its calls."""

    def __init__(self, strong, weak):
        self.mixture, self.weights, self.calls = strong, [strong.weights, weak.weights], 0

    def __call__(self, x, sigma, **extra_args):
        self.calls += 1
        d_strong, d_weak = self.mixture.denoise_reweighted(x, sigma, self.weights)
        return d_strong, d_weak


@pytest.mark.parametrize("name", ALL)
def test_a_joint_denoiser_replaces_both_reflection_calls_with_the_same_result(name):
    """weak_sigma='start': one joint evaluation per reflection instead of a strong and a weak call,
    the samples equal the two-call path's to float rounding, the sampler's own steps untouched."""
    two_calls, _ = sample(name, STRONG.denoise, WEAK.denoise, n=256, reflect_steps=10)
    model, weak, joint = Counting(STRONG.denoise), Counting(WEAK.denoise), JointMixture(STRONG, WEAK)
    plain_model = Counting(STRONG.denoise)
    sample(name, plain_model, n=256)
    one_call, wrapped = sample(name, model, weak, n=256, reflect_steps=10, joint=joint)
    report = wrapped.last_report
    assert joint.calls == report.joint_calls == len(report.reflected_steps) == 10
    assert weak.calls == 0
    if not is_fixed_range(name):
        assert model.calls == plain_model.calls  # the model serves only the sampler's own steps
    torch.testing.assert_close(one_call, two_calls, rtol=1e-12, atol=1e-12)
    assert report.gap is not None and report.gap > 0


@pytest.mark.parametrize("name", ALL)
def test_a_joint_denoiser_of_equal_models_is_exactly_the_plain_sampler(name):
    plain, _ = sample(name, STRONG.denoise, n=256)
    two_calls, _ = sample(name, STRONG.denoise, STRONG.denoise, n=256, reflect_steps=10)
    joint, wrapped = sample(name, STRONG.denoise, STRONG.denoise, n=256, reflect_steps=10,
                            joint=JointMixture(STRONG, STRONG))
    assert torch.equal(joint, two_calls)  # the reflection is the identity, bit for bit
    if not is_multistep(name):
        assert torch.equal(joint, plain)
    assert wrapped.last_report.gap == 0.0


@pytest.mark.parametrize("weak_sigma", ["next", "current"])
def test_a_joint_denoiser_is_not_used_off_the_start_point(weak_sigma):
    """'next'/'current' read the weak model at another point than the strong one: two calls."""
    joint, weak = JointMixture(STRONG, WEAK), Counting(WEAK.denoise)
    expected, _ = sample("Euler", STRONG.denoise, WEAK.denoise, n=64, reflect_steps=4, weak_sigma=weak_sigma)
    got, wrapped = sample("Euler", STRONG.denoise, weak, n=64, reflect_steps=4, weak_sigma=weak_sigma, joint=joint)
    assert joint.calls == wrapped.last_report.joint_calls == 0 and weak.calls == 4
    assert torch.equal(got, expected)


def test_separate_strong_denoiser_takes_the_reflection_calls():
    model, strong, weak = Counting(STRONG.denoise), Counting(STRONG.denoise), Counting(WEAK.denoise)
    plain = Counting(STRONG.denoise)
    sample("DPM++ 2M", plain, n=8)
    sample("DPM++ 2M", model, weak, n=8, strong=strong, reflect_steps=4)
    assert (model.calls, strong.calls, weak.calls) == (plain.calls, 4, 4)


@pytest.mark.parametrize("name", ALL)
def test_callback_sees_every_step_once_in_order(name):
    seen_plain, seen = [], []
    sample(name, STRONG.denoise, n=8, callback=lambda d: seen_plain.append(d["i"]))
    sample(name, STRONG.denoise, WEAK.denoise, n=8, callback=lambda d: seen.append(d["i"]), reflect_steps=7)
    assert seen == seen_plain == list(range(len(seen_plain)))


@pytest.mark.parametrize("name", ["Euler a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M SDE"])
def test_deterministic_under_a_seed(name):
    a, _ = sample(name, STRONG.denoise, WEAK.denoise, seed=3, n=64)
    b, _ = sample(name, STRONG.denoise, WEAK.denoise, seed=3, n=64)
    c, _ = sample(name, STRONG.denoise, WEAK.denoise, seed=4, n=64)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", ["DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M SDE"])
def test_sde_noise_is_one_brownian_path_over_the_whole_schedule(name, recwarn):
    """Sub-range calls would each build a tree for their own range and warn when queried outside it;
    the wrapper builds one tree for the whole schedule. Exact float64 levels keep torchsde quiet."""
    sample(name, STRONG.denoise, WEAK.denoise, n=16, reflect_steps=10)
    assert not [w for w in recwarn if _outside_the_tree(str(w.message))]


def _outside_the_tree(message):
    """torchsde's "Should have ta>=t0 but got ta=X and t0=Y": a query outside the tree's range.
    k-diffusion's own trees see float32 rounding at the ends (X - Y ~ 1e-7); a tree built for a
    sub-range would be queried whole steps away."""
    numbers = re.findall(r"=(-?[0-9.e+-]+)", message)
    if "Should have" not in message or len(numbers) < 2:
        return False
    got, bound = float(numbers[-2].rstrip(".")), float(numbers[-1].rstrip("."))
    return abs(got - bound) > 1e-4 * max(abs(bound), 1.0)


def test_a_callers_noise_sampler_serves_every_run():
    calls = []

    def noise_sampler(sigma, sigma_next):
        calls.append((float(sigma), float(sigma_next)))
        return torch.zeros(8, 1, dtype=torch.float64)

    torch.manual_seed(0)
    x = torch.randn(8, 1, dtype=torch.float64) * 20
    wrapped = lib_w2sd.wrap_sampler(K.sample_euler_ancestral, WEAK.denoise, reflect_steps=5)
    wrapped(STRONG.denoise, x, SIGMAS, disable=True, noise_sampler=noise_sampler)
    levels = [float(s) for s in SIGMAS]
    assert calls == [(levels[i], levels[i + 1]) for i in range(len(levels) - 2)]


def test_strength_zero_is_exactly_the_plain_sampler():
    plain, _ = sample("Euler a", STRONG.denoise, n=64)
    weak = Counting(WEAK.denoise)
    off, _ = sample("Euler a", STRONG.denoise, weak, n=64, strength=0.0)
    assert torch.equal(plain, off) and weak.calls == 0


def test_strength_scales_the_displacement():
    masses = [left_mass(sample("Euler", STRONG.denoise, WEAK.denoise, strength=s)[0]) for s in (0.0, 0.5, 1.0)]
    assert masses[0] < masses[1] < masses[2]


def test_more_reflections_per_step_cost_more_and_push_further():
    weak = Counting(WEAK.denoise)
    once = left_mass(sample("Euler", STRONG.denoise, WEAK.denoise, reflect_steps=6)[0])
    twice, wrapped = sample("Euler", STRONG.denoise, weak, reflect_steps=6, reflections=2)
    assert weak.calls == 12 and wrapped.last_report.strong_calls == 12
    assert left_mass(twice) > once


@pytest.mark.parametrize("weak_sigma", ["start", "current", "next"])
def test_weak_model_is_told_the_chosen_level(weak_sigma):
    weak = Counting(WEAK.denoise)
    sample("Euler", STRONG.denoise, weak, n=4, reflect_steps=3, weak_sigma=weak_sigma)
    offset = 1 if weak_sigma == "next" else 0
    assert weak.sigmas == pytest.approx([float(SIGMAS[i + offset]) for i in range(3)])
    assert left_mass(sample("Euler", STRONG.denoise, WEAK.denoise, weak_sigma=weak_sigma)[0]) > 0.4


def test_sigma_window_reflects_only_steps_inside_it():
    weak = Counting(WEAK.denoise)
    _, wrapped = sample("DPM++ 2M", STRONG.denoise, weak, n=4, sigma_window=(1.0, 5.0))
    levels = [float(SIGMAS[i]) for i in wrapped.last_report.reflected_steps]
    assert levels and all(1.0 <= s <= 5.0 for s in levels)
    assert weak.calls == len(levels)


def test_every_run_after_the_window_keeps_the_samplers_history():
    """Past the window the sampler runs once to the end: its multistep order builds up as usual."""
    model = Counting(STRONG.denoise)
    seen = []
    sample("DPM++ 2M", model, WEAK.denoise, n=4, reflect_steps=3, callback=lambda d: seen.append(d["i"]))
    plain, _ = sample("DPM++ 2M", STRONG.denoise, n=4)
    tail_only, _ = sample("DPM++ 2M", STRONG.denoise, WEAK.denoise, n=4, sigma_window=(1e9, 1e9))
    assert torch.equal(plain, tail_only)  # nothing reflected: one call, bit-identical


@pytest.mark.parametrize("name", ALL)
def test_short_schedules(name):
    if is_fixed_range(name):
        pytest.skip("DPM fast takes a range, not a schedule")
    # img2img's shortened schedule, more reflect steps than steps, a one-step schedule to 0
    for sigmas in (SIGMAS[14:], SIGMAS[-3:], SIGMAS[-2:], torch.tensor([3.0, 0.0], dtype=torch.float64)):
        seen = []
        out, wrapped = sample(name, STRONG.denoise, WEAK.denoise, n=8, sigmas=sigmas, reflect_steps=99,
                              callback=lambda d, seen=seen: seen.append(d["i"]))
        n = len(sigmas) - 1
        assert seen == list(range(n)) and torch.isfinite(out).all()
        assert wrapped.last_report.reflected_steps == list(range(n - 1))  # never the step to 0


def test_the_final_step_to_zero_is_never_reflected():
    weak = Counting(WEAK.denoise)
    _, wrapped = sample("Euler", STRONG.denoise, weak, n=4, reflect_steps=1000)
    assert wrapped.last_report.reflected_steps == list(range(19)) and 0.0 not in weak.sigmas


def test_schedule_not_ending_at_zero_reflects_every_step():
    sigmas = SIGMAS[:8]
    _, wrapped = sample("Euler", STRONG.denoise, WEAK.denoise, n=4, sigmas=sigmas, reflect_steps=99)
    assert wrapped.last_report.reflected_steps == list(range(7))


@pytest.mark.parametrize("name", ALL)
def test_stop_ends_the_reflections_and_the_rest_runs_as_one_sampler_call(name):
    """A caller whose model changes mid-sampling (the WebUIs' refiner) stops the reflections at a
    step: nothing is reflected from there, the sampler runs the rest of the schedule in one call.
    For samplers without a history that is exactly the run reflecting only the steps before."""
    asked, seen = [], []

    def stop(i, sigma):
        asked.append((i, float(sigma)))
        return i == 3

    model, weak = Counting(STRONG.denoise), Counting(WEAK.denoise)
    stopped, wrapped = sample(name, model, weak, n=64, reflect_steps=8, stop=stop,
                              callback=lambda d: seen.append(d["i"]))
    levels = [float(s) for s in _levels(name)]
    assert asked == [(i, levels[i]) for i in range(4)]  # before each reflection, never after the stop
    assert wrapped.last_report.reflected_steps == [0, 1, 2] and weak.calls == 3
    assert seen == list(range(len(levels) - 1))
    first_three, _ = sample(name, STRONG.denoise, WEAK.denoise, n=64, reflect_steps=3)
    if not is_multistep(name):
        assert torch.equal(stopped, first_three)
    else:  # the history restarts at the stop; the reflected part is the same
        assert torch.isfinite(stopped).all()


def _levels(name):
    """The step levels sample() runs for `name` (DPM fast: its own grid)."""
    fn, fixed = sampler_function(name)
    x = torch.zeros(1, 1, dtype=torch.float64)
    if is_fixed_range(name):
        return lib_w2sd.sampler.schedule_sigmas(fn, None, x, float(SIGMAS[-2]), float(SIGMAS[0]), DPM_FAST_NFE)
    return lib_w2sd.sampler.schedule_sigmas(fn, None, x, SIGMAS)


def test_stop_at_the_first_step_is_the_plain_sampler():
    plain, _ = sample("DPM++ 2M", STRONG.denoise, n=64)
    stopped, wrapped = sample("DPM++ 2M", STRONG.denoise, WEAK.denoise, n=64, stop=lambda i, sigma: True)
    assert torch.equal(stopped, plain) and wrapped.last_report.reflected_steps == []


def test_dpm_adaptive_is_refused_with_a_typed_error():
    with pytest.raises(lib_w2sd.UnsupportedSampler, match="DPM adaptive"):
        lib_w2sd.wrap_sampler(K.sample_dpm_adaptive, WEAK.denoise)


def test_any_function_of_the_convention_works():
    """A sampler this project has never seen (a Restart-like one written here)."""

    @torch.no_grad()
    def sample_restartish(model, x, sigmas, extra_args=None, callback=None, disable=None, s_noise=1.0):
        extra_args = extra_args or {}
        s_in = x.new_ones([x.shape[0]])
        for i in range(len(sigmas) - 1):
            denoised = model(x, sigmas[i] * s_in, **extra_args)
            if callback is not None:
                callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
            x = x + K.to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
        return x

    wrapped = lib_w2sd.wrap_sampler(sample_restartish, WEAK.denoise)
    assert inspect.signature(wrapped) == inspect.signature(sample_restartish)
    torch.manual_seed(0)
    x = torch.randn(N_SAMPLES, 1, dtype=torch.float64) * 20
    plain = sample_restartish(STRONG.denoise, x, SIGMAS)
    assert left_mass(wrapped(STRONG.denoise, x, SIGMAS)) > left_mass(plain) + 0.08


def test_wrapping_never_stacks():
    once = lib_w2sd.wrap_sampler(K.sample_euler, WEAK.denoise)
    twice = lib_w2sd.wrap_sampler(once, WEAK.denoise)
    assert twice.w2sd_original is K.sample_euler
    weak = Counting(WEAK.denoise)
    model = Counting(STRONG.denoise)
    lib_w2sd.wrap_sampler(once, weak, reflect_steps=2)(model, torch.zeros(2, 1, dtype=torch.float64), SIGMAS)
    assert weak.calls == 2 and model.calls == 22


@pytest.mark.parametrize(
    "options, field",
    [
        ({"reflect_steps": -1}, "reflect_steps"),
        ({"reflect_steps": 2.5}, "reflect_steps"),
        ({"strength": -0.1}, "strength"),
        ({"strength": float("nan")}, "strength"),
        ({"reflections": 0}, "reflections"),
        ({"weak_sigma": "previous"}, "weak_sigma"),
        ({"sigma_window": (5.0, 1.0)}, "sigma_window"),
        ({"gap_probes": -1}, "gap_probes"),
        ({"strong": "model"}, "strong"),
        ({"joint": "both"}, "joint"),
        ({"stop": 3}, "stop"),
    ],
)
def test_bad_options_name_the_option(options, field):
    with pytest.raises(lib_w2sd.InvalidOption, match=f"'{field}'"):
        lib_w2sd.wrap_sampler(K.sample_euler, WEAK.denoise, **options)


@pytest.mark.parametrize("weak_sigma", ["start", "next"])
def test_gap_diagnostic_is_zero_for_identical_models_and_grows_with_the_difference(weak_sigma):
    gaps = []
    for left in (0.3, 0.25, 0.2, 0.1):
        weak = STRONG.reweighted([left, 1 - left])
        _, wrapped = sample("Euler", STRONG.denoise, weak.denoise, n=256, gap_probes=3, weak_sigma=weak_sigma)
        report = wrapped.last_report
        if weak_sigma == "start":  # both models see the same input: measured on every step, for free
            assert len(report.gaps) == len(report.reflected_steps) == report.strong_calls
        else:  # one extra strong call per probe
            assert len(report.gaps) == 3 and report.strong_calls == len(report.reflected_steps) + 3
        gaps.append(report.gap)
    assert gaps[0] == 0.0
    assert gaps == sorted(gaps) and gaps[-1] > 0.01


def test_high_noise_gap_averages_the_steps_at_or_above_unit_sigma():
    _, wrapped = sample("Euler", STRONG.denoise, WEAK.denoise, n=64)
    report = wrapped.last_report
    by_step = dict(report.gaps)
    high = [g for i, g in by_step.items() if float(SIGMAS[i]) >= lib_w2sd.sampler.HIGH_NOISE_SIGMA]
    assert 0 < len(high) < len(by_step)  # reflected steps on both sides of sigma 1
    assert report.gap_high == pytest.approx(sum(high) / len(high), rel=1e-6)
    assert report.gap == pytest.approx(sum(by_step.values()) / len(by_step), rel=1e-6)
    assert report.gap_above(float(SIGMAS[0]) * 2) is None
    _, same = sample("Euler", STRONG.denoise, STRONG.denoise, n=64)
    assert same.last_report.gap_high == 0.0


def test_no_gap_without_probes_off_the_start_point():
    _, wrapped = sample("Euler", STRONG.denoise, WEAK.denoise, n=8, weak_sigma="next")
    assert wrapped.last_report.gap is None and wrapped.last_report.gaps == []
