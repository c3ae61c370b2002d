"""Stand-in for the `modules_forge` package of reForge (3b56b268) and Forge Classic (1f95d717).
lib_w2sd.webui.detect_webui() tells the forks by this folder, `ldm_patched` beside it and
forge_version.py."""
