"""Stand-in for backend/modules/k_model.py (Forge dfdcbab6): KModel (k_model.py:7-59)."""

import torch

from backend.modules.k_prediction import k_prediction_from_diffusers_scheduler


class KModel(torch.nn.Module):
    def __init__(self, model, diffusers_scheduler, k_predictor=None, config=None):
        super().__init__()
        self.config = config
        self.storage_dtype = model.storage_dtype
        self.computation_dtype = model.computation_dtype
        self.diffusion_model = model
        self.predictor = k_predictor if k_predictor is not None else k_prediction_from_diffusers_scheduler(
            diffusers_scheduler)

    def apply_model(self, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        sigma = t
        xc = self.predictor.calculate_input(sigma, x)
        if c_concat is not None:
            xc = torch.cat([xc] + [c_concat], dim=1)
        dtype = self.computation_dtype
        t = self.predictor.timestep(t).float()
        extra = {k: v.to(dtype) if hasattr(v, "dtype") else v for k, v in kwargs.items()}
        out = self.diffusion_model(xc.to(dtype), t, context=c_crossattn.to(dtype), control=control,
                                   transformer_options=transformer_options, **extra).float()
        return self.predictor.calculate_denoised(sigma, out, x)

    def memory_required(self, input_shape):
        return input_shape[0] * input_shape[2] * input_shape[3] * 4 * 16384
