"""Stand-in for modules/shared.py + shared_options.py of reForge (3b56b268) and Forge Classic
(1f95d717): the A1111 stand-in's `opts` and `state`, plus reForge's 'Dynamic clip skip ramp'
(R:modules/shared_options.py:204; Classic has none, and reads it nowhere)."""

from modules import a1111_stand_in

globals().update({k: v for k, v in vars(a1111_stand_in("shared")).items() if not k.startswith("__")})
opts.add_option("dynamic_clip_skip_enabled", OptionInfo(False))  # noqa: F821 (copied above)
