"""Stand-in for Forge's modules_forge/main_entry.py (dfdcbab6): checkpoint_change and
refresh_model_loading_parameters (main_entry.py:220-255), which point the next forge_model_reload
at a checkpoint (the storage dtype and additional modules are left out)."""

from modules import sd_models, shared


def refresh_model_loading_parameters():
    sd_models.model_data.forge_loading_parameters = dict(checkpoint_info=sd_models.select_checkpoint())


def checkpoint_change(ckpt_name: str, save=True, refresh=True):
    """Returns True if the checkpoint changed."""
    new_ckpt_info = sd_models.get_closet_checkpoint_match(ckpt_name)
    current_ckpt_info = sd_models.get_closet_checkpoint_match(shared.opts.data.get("sd_model_checkpoint", ""))
    if new_ckpt_info == current_ckpt_info:
        return False
    shared.opts.set("sd_model_checkpoint", ckpt_name)
    if refresh:
        refresh_model_loading_parameters()
    return True
