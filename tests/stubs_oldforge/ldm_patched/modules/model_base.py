"""Stand-in for ldm_patched/modules/model_base.py + model_sampling.py (C:1f95d717, R:3b56b268):
BaseModel.apply_model (C:model_base.py:85-130) over a UNet, with ModelSamplingDiscrete
(C:model_sampling.py:34-110: input scaled by 1/sqrt(sigma^2 + 1), the timestep nearest to sigma)
and the EPS or V_PREDICTION mixin (C:model_sampling.py:12-31)."""

import torch


class EPS:
    def calculate_denoised(self, sigma, model_output, model_input):
        sigma = sigma.view(sigma.shape[:1] + (1,) * (model_output.ndim - 1))
        return model_input - model_output * sigma


class V_PREDICTION(EPS):
    def calculate_denoised(self, sigma, model_output, model_input):
        sigma = sigma.view(sigma.shape[:1] + (1,) * (model_output.ndim - 1))
        return model_input * self.sigma_data ** 2 / (sigma ** 2 + self.sigma_data ** 2) - \
            model_output * sigma * self.sigma_data / (sigma ** 2 + self.sigma_data ** 2) ** 0.5


class ModelSamplingDiscrete(torch.nn.Module):
    def __init__(self, alphas_cumprod):
        super().__init__()
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.register_buffer("sigmas", sigmas.float())
        self.register_buffer("log_sigmas", sigmas.log().float())
        self.sigma_data = 1.0

    def calculate_input(self, sigma, noise):
        sigma = sigma.view(sigma.shape[:1] + (1,) * (noise.ndim - 1))
        return noise / (sigma ** 2 + self.sigma_data ** 2) ** 0.5

    def timestep(self, sigma):
        dists = sigma.log().to(self.log_sigmas.device) - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape).to(sigma.device)

    def percent_to_sigma(self, percent):
        return float(self.sigmas[int((1 - percent) * (len(self.sigmas) - 1))])


def model_sampling(model_type):
    """C:model_base.py:30-45: the schedule class with the prediction type's mixin."""
    prediction = {"EPS": EPS, "V_PREDICTION": V_PREDICTION}[model_type]
    return type("ModelSampling", (ModelSamplingDiscrete, prediction), {})


def default_alphas_cumprod():
    """SD's linear beta schedule (C:model_sampling.py _register_schedule)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


class BaseModel(torch.nn.Module):
    def __init__(self, diffusion_model, alphas_cumprod=None, model_type="EPS"):
        super().__init__()
        self.diffusion_model = diffusion_model
        alphas_cumprod = default_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
        self.model_sampling = model_sampling(model_type)(alphas_cumprod)

    def apply_model(self, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        sigma = t
        xc = self.model_sampling.calculate_input(sigma, x)
        if c_concat is not None:
            xc = torch.cat([xc] + [c_concat], dim=1)
        t = self.model_sampling.timestep(t).float()
        model_output = self.diffusion_model(xc, t, context=c_crossattn, control=control,
                                            transformer_options=transformer_options, **kwargs).float()
        return self.model_sampling.calculate_denoised(sigma, model_output, x)

    def memory_required(self, input_shape, **kwargs):
        return input_shape[0] * input_shape[2] * input_shape[3] * 4 * 16384
