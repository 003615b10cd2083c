"""The diffusion and flow-matching maths of ``genforge.core.diffusion``: closed forms, exactness on
known answers, and (when diffusers is installed) agreement with diffusers' own schedulers."""

from __future__ import annotations

import math

import pytest
import torch

from genforge.core.diffusion import NoiseSchedule, beta_schedule, denoise, guided, integrate, interpolate
from genforge.core.diffusion import sampling_timesteps, velocity_target
from genforge.core.diffusion.samplers import ddim_step, ddpm_step, row_noise
from genforge.core.diffusion.schedule import to_x0_eps, v_target


def _cos(t: float, T: int) -> float:
    return math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2


# -- schedules ----------------------------------------------------------------------------------------
def test_linear_schedule_is_ho_et_al_scaled_to_its_length():
    s = NoiseSchedule("linear", 1000)
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    expected = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    assert torch.allclose(s.alphas_cumprod, expected, rtol=0, atol=1e-15)
    assert s.alphas_cumprod[-1] < 1e-4  # ends in (almost) pure noise
    short = NoiseSchedule("linear", 100)  # betas x10: a short schedule also ends in noise
    assert short.betas[-1].item() == pytest.approx(0.2) and short.alphas_cumprod[-1] < 1e-4


def test_cosine_schedule_follows_the_closed_form_until_the_clip():
    T = 1000
    s = NoiseSchedule("cosine", T)
    closed = torch.tensor([_cos(t + 1, T) / _cos(0, T) for t in range(T)], dtype=torch.float64)
    assert torch.allclose(s.alphas_cumprod[:-20], closed[:-20], rtol=1e-10, atol=0)
    assert (s.alphas_cumprod[1:] < s.alphas_cumprod[:-1]).all()
    assert s.betas.max().item() == pytest.approx(0.999)  # the clip (Nichol & Dhariwal)
    assert s.alphas_cumprod[-1] < 1e-6
    assert s.alpha_bar(-1) == 1.0 and s.alpha_bar(0) == pytest.approx(float(s.alphas_cumprod[0]))


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="linear or cosine"):
        beta_schedule("sigmoid", 10)


# -- predictions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_eps_and_v_predictions_convert_back_to_x0_and_eps(prediction):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(5, 1, 4, 4, generator=g), torch.randn(5, 1, 4, 4, generator=g)
    s = NoiseSchedule("cosine", 1000)
    t = torch.tensor([0, 10, 500, 900, 990])
    x_t = s.add_noise(x0, eps, t)
    out = s.target(x0, eps, t, prediction)
    a = s.alphas_cumprod[t].float().view(-1, 1, 1, 1)
    x0_hat, eps_hat = to_x0_eps(x_t, out, a, prediction)
    assert torch.allclose(x0_hat, x0, atol=1e-3) and torch.allclose(eps_hat, eps, atol=1e-3)
    if prediction == "v":
        assert torch.allclose(out, a.sqrt() * eps - (1 - a).sqrt() * x0, atol=1e-6)
        assert torch.allclose(v_target(x0, eps, a), out)


# -- samplers ------------------------------------------------------------------------------------------
def test_sampling_timesteps_are_trailing_and_bounded():
    assert sampling_timesteps(1000, 10) == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert sampling_timesteps(1000, 1000) == list(range(999, -1, -1))
    assert sampling_timesteps(50, 1) == [49]
    for bad in (0, 51):
        with pytest.raises(ValueError):
            sampling_timesteps(50, bad)


def _oracle(x0: torch.Tensor, s: NoiseSchedule, prediction: str):
    """A perfect denoiser for one known image ``x0``: the prediction that recovers it exactly."""
    def predict(x_t, t):
        a = s.alpha_bar(int(t[0]))
        eps = (x_t - math.sqrt(a) * x0) / math.sqrt(1 - a)
        return eps if prediction == "eps" else v_target(x0, eps, a)
    return predict


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ddim_with_a_perfect_denoiser_lands_on_the_data_and_is_deterministic(prediction):
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(3, 1, 4, 4, generator=g) * 1.6 - 0.8
    s = NoiseSchedule("cosine", 1000)
    start = torch.randn(3, 1, 4, 4, generator=g)
    a = denoise(_oracle(x0, s, prediction), start.clone(), s, 10, sampler="ddim", prediction=prediction)
    b = denoise(_oracle(x0, s, prediction), start.clone(), s, 10, sampler="ddim", prediction=prediction)
    assert torch.equal(a, b)  # eta = 0: no randomness
    assert torch.allclose(a, x0, atol=1e-5)
    other = denoise(_oracle(x0, s, prediction), torch.randn(3, 1, 4, 4, generator=g), s, 10, prediction=prediction)
    assert torch.allclose(other, x0, atol=1e-5)  # any start: the oracle knows the answer


def test_ddpm_step_is_the_posterior_and_ddim_with_eta_one_matches_it():
    g = torch.Generator().manual_seed(2)
    x_t, x0, noise = (torch.randn(4, 1, 3, 3, generator=g) for _ in range(3))
    a_t, a_prev = 0.3, 0.6
    eps = (x_t - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
    beta = 1 - a_t / a_prev
    mean = math.sqrt(a_prev) * beta / (1 - a_t) * x0 + math.sqrt(1 - beta) * (1 - a_prev) / (1 - a_t) * x_t
    var = beta * (1 - a_prev) / (1 - a_t)
    assert torch.allclose(ddpm_step(x_t, x0, a_t, a_prev, noise), mean + math.sqrt(var) * noise, atol=1e-6)
    # DDIM's eta = 1 is the same chain (Song et al., eq. 16) when eps is consistent with x0
    assert torch.allclose(ddim_step(x_t, x0, eps, a_t, a_prev, eta=1.0, noise=noise),
                          mean + math.sqrt(var) * noise, atol=1e-5)
    assert torch.equal(ddpm_step(x_t, x0, a_t, 1.0, None), x0)  # last step: no noise, the estimate itself


def test_row_noise_of_a_row_does_not_depend_on_its_batch():
    seeds = torch.tensor([5, 6, 7, 8])
    x = torch.zeros(4, 1, 2, 2)
    whole = row_noise(seeds)
    tail = row_noise(seeds[2:])
    first = whole(x)
    assert torch.equal(first[2:], tail(x[2:]))
    assert not torch.equal(whole(x), first)  # each call draws the next noise of every row


def test_guidance_combines_conditional_and_unconditional_outputs():
    calls = []

    def predict(x, t, y):
        calls.append(y)
        return torch.full_like(x, 1.0 if y is None else 3.0)

    x, t, y = torch.zeros(2, 1), torch.zeros(2), torch.tensor([0, 1])
    assert torch.equal(guided(predict, y, 1.0)(x, t), torch.full_like(x, 3.0)) and len(calls) == 1
    assert torch.equal(guided(predict, y, 0.0)(x, t), torch.full_like(x, 1.0)) and calls[-1] is None
    assert torch.equal(guided(predict, y, 2.5)(x, t), torch.full_like(x, 1 + 2.5 * 2))
    assert torch.equal(guided(predict, None, 2.5)(x, t), torch.full_like(x, 1.0))  # unconditional: no guidance


# -- flow matching ---------------------------------------------------------------------------------------
def test_flow_interpolation_ends_and_velocity():
    g = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(3, 1, 2, 2, generator=g), torch.randn(3, 1, 2, 2, generator=g)
    assert torch.equal(interpolate(x0, x1, torch.zeros(3)), x0)
    assert torch.equal(interpolate(x0, x1, torch.ones(3)), x1)
    mid = interpolate(x0, x1, torch.tensor([0.25, 0.5, 0.75]))
    assert torch.allclose(mid[1], (x0[1] + x1[1]) / 2)
    assert torch.equal(velocity_target(x0, x1), x1 - x0)
    # the straight path's velocity carries its start to its end in one Euler step
    assert torch.allclose(integrate(lambda x, t: x1 - x0, x0, 1, "euler"), x1, atol=1e-6)


def test_heun_is_second_order_and_euler_first():
    x = torch.ones(1, 1)
    exact = math.e  # dx/dt = x from 1 for a unit of time

    def err(method, steps):
        return abs(float(integrate(lambda x, t: x, x, steps, method)) - exact)

    assert err("euler", 20) < err("euler", 10) * 0.6  # halves with the step
    assert err("heun", 20) < err("heun", 10) * 0.3   # quarters with the step
    assert err("heun", 5) < err("euler", 10) / 5     # and beats Euler at the same network calls
    with pytest.raises(ValueError):
        integrate(lambda x, t: x, x, 0)


# -- against diffusers' schedulers (the field's reference implementation) -------------------------------------
def _fake_net(x, t):
    return 0.3 * x * torch.cos(t.float().view(-1, 1, 1, 1) / 300) + 0.05


@pytest.mark.parametrize("schedule,prediction", [("cosine", "v"), ("linear", "eps")])
def test_schedules_and_samplers_match_diffusers(schedule, prediction):
    diffusers = pytest.importorskip("diffusers")
    T, steps = 1000, 10
    kind = {"cosine": "squaredcos_cap_v2", "linear": "linear"}[schedule]
    common = dict(num_train_timesteps=T, beta_schedule=kind, prediction_type={"eps": "epsilon", "v": "v_prediction"}[prediction],
                  clip_sample=True, timestep_spacing="trailing")
    ours = NoiseSchedule(schedule, T)
    ddim = diffusers.DDIMScheduler(**common, set_alpha_to_one=True)
    assert torch.allclose(ddim.alphas_cumprod.double(), ours.alphas_cumprod, atol=1e-6)
    ddim.set_timesteps(steps)
    assert ddim.timesteps.tolist() == sampling_timesteps(T, steps)
    start = torch.randn(4, 1, 5, 5, generator=torch.Generator().manual_seed(4))
    x = start.clone()
    for t in ddim.timesteps:  # eps recomputed from the clipped x0, as in OpenAI's guided-diffusion and here
        x = ddim.step(_fake_net(x, t.expand(len(x))), t, x, eta=0.0, use_clipped_model_output=True).prev_sample
    mine = denoise(_fake_net, start.clone(), ours, steps, sampler="ddim", prediction=prediction)
    assert torch.allclose(mine, x, atol=1e-4)

    ddpm = diffusers.DDPMScheduler(**common, variance_type="fixed_small")
    ddpm.set_timesteps(steps)
    gen = torch.Generator().manual_seed(5)
    x = start.clone()
    for t in ddpm.timesteps:
        x = ddpm.step(_fake_net(x, t.expand(len(x))), t, x, generator=gen).prev_sample
    gen = torch.Generator().manual_seed(5)  # the same noise, drawn in the same order
    mine = denoise(_fake_net, start.clone(), ours, steps, sampler="ddpm", prediction=prediction,
                   noise=lambda x: torch.randn(x.shape, generator=gen))
    assert torch.allclose(mine, x, atol=1e-4)
