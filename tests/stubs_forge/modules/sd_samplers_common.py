"""Stand-in for Forge's modules/sd_samplers_common.py (dfdcbab6): the A1111 stand-in's, with Forge's
apply_refiner (sd_samplers_common.py:166-211): the completed ratio is always the count of the
sampler's own calls (the threshold and pass rules are A1111's, switch_now); the switch reloads
the whole engine through main_entry/forge_model_reload, re-activates the prompt's extra networks
on it, re-encodes the conds, points the denoiser at the new model and loads its UNet."""

from backend.sampling.sampling_function import sampling_cleanup, sampling_prepare
from modules_forge import main_entry

from modules import a1111_stand_in, extra_networks, reexport, sd_models, shared

reexport(a1111_stand_in("sd_samplers_common"), globals())


def apply_refiner(cfg_denoiser, x):
    completed_ratio = cfg_denoiser.step / cfg_denoiser.total_steps
    refiner_checkpoint_info = switch_now(cfg_denoiser, completed_ratio)  # noqa: F821 (re-exported above)
    if refiner_checkpoint_info is None:
        return False
    sampling_cleanup(sd_models.model_data.get_sd_model().forge_objects.unet)
    with sd_models.SkipWritingToConfig():
        fp_checkpoint = getattr(shared.opts, "sd_model_checkpoint")
        checkpoint_changed = main_entry.checkpoint_change(refiner_checkpoint_info.short_title, save=False, refresh=False)
        if checkpoint_changed:
            try:
                main_entry.refresh_model_loading_parameters()
                sd_models.forge_model_reload()
            finally:
                main_entry.checkpoint_change(fp_checkpoint, save=False, refresh=True)
    if not cfg_denoiser.p.disable_extra_networks:
        extra_networks.activate(cfg_denoiser.p, cfg_denoiser.p.extra_network_data)
    cfg_denoiser.p.setup_conds()
    cfg_denoiser.update_inner_model()
    sampling_prepare(sd_models.model_data.get_sd_model().forge_objects.unet, x=x)
    return True
