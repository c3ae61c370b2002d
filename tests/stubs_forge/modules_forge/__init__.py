"""Stand-in for Forge's `modules_forge` package (dfdcbab6). lib_w2sd.webui.is_forge() detects
Forge by this package; the adapter itself needs nothing from it."""
