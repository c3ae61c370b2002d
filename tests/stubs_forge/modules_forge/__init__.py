"""Stand-in for Forge's `modules_forge` package (dfdcbab6). lib_w2sd.webui.detect_webui() tells
Forge by this folder, the `backend` folder beside it and forge_version.py; the adapter itself
needs nothing from it."""
