"""Stand-in for Forge's `backend` package (lllyasviel/stable-diffusion-webui-forge, commit dfdcbab6).

Only the pieces W2SD's Forge adapter touches, each file mirroring the real file of the same
name: real signatures, minimal behaviour, CPU only. Used by tests/test_webui_forge.py.
"""
