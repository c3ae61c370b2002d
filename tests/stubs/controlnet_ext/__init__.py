"""Stand-in for the sd-webui-controlnet extension (Mikubill/sd-webui-controlnet v1.1.455, commit
56cec5b2), the parts W2SD relies on: the Script that hooks the UNet per generation (controlnet.py),
the UnetHook reading each unit's weight on every UNet call (hook.py), IP-Adapter units patching the
cross-attention (plugable_ipadapter.py) and the enums they use (enums.py). The real extension's
scripts/ folder is a package `scripts`; here it is `controlnet_ext`."""
