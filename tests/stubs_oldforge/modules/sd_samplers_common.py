"""Stand-in for modules/sd_samplers_common.py of reForge (R:3b56b268) and Forge Classic (C:1f95d717):
the A1111 stand-in's, with the forks' apply_refiner(cfg_denoiser, x): their denoisers pass no sigma,
so the completed ratio is the count of the sampler's own calls (R:186-188, C:176-177); the switch
cleans up the UNet patcher, reloads the weights, re-encodes the conds and loads the new UNet
(R:223-240, C:202-214)."""

from modules_forge.forge_sampler import sampling_cleanup, sampling_prepare

from modules import a1111_stand_in, extra_networks, sd_models, shared

globals().update({k: v for k, v in vars(a1111_stand_in("sd_samplers_common")).items() if not k.startswith("__")})


def apply_refiner(cfg_denoiser, x=None):
    refiner_checkpoint_info = switch_now(cfg_denoiser, cfg_denoiser.step / cfg_denoiser.total_steps)  # noqa: F821
    if refiner_checkpoint_info is None:
        return False
    sampling_cleanup(shared.sd_model.forge_objects.unet)
    with sd_models.SkipWritingToConfig():
        sd_models.reload_model_weights(info=refiner_checkpoint_info)
    if not cfg_denoiser.p.disable_extra_networks:
        extra_networks.activate(cfg_denoiser.p, cfg_denoiser.p.extra_network_data)
    cfg_denoiser.p.setup_conds()
    cfg_denoiser.update_inner_model()
    sampling_prepare(shared.sd_model.forge_objects.unet, x=x)
    return True
