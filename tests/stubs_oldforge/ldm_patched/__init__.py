"""Stand-in for ldm_patched, Forge's first backend (ComfyUI's code) as reForge and Forge Classic keep it."""
