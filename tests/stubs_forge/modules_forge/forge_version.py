# modules_forge/forge_version.py of Forge dfdcbab6, verbatim (lib_w2sd.webui.detect_webui reads it as text).
version = '2.0.1v1.10.1'
