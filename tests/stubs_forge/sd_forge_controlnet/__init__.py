"""Stand-in for Forge's built-in ControlNet (extensions-builtin/sd_forge_controlnet) and the
IP-Adapter support it runs units with (extensions-builtin/sd_forge_ipadapter), Forge dfdcbab6."""
