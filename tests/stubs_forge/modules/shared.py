"""Stand-in for Forge's modules/shared.py + shared_options.py (dfdcbab6): the A1111 stand-in's
`opts`, `state` and friends, plus the options Forge's sampling code reads. Tests set
`shared.sd_model` (the real one resolves it from sd_models.model_data)."""

from modules import a1111_stand_in, reexport

reexport(a1111_stand_in("shared"), globals())

for _key, _value in {
    "hires_fix_refiner_pass": "second pass",
    "sd_noise_schedule": "Default",
    "skip_early_cond": 0.0,
    "sd_vae_encode_method": "Full",
}.items():
    opts.add_option(_key, OptionInfo(_value))  # noqa: F821 (re-exported above)

sd_model = None
