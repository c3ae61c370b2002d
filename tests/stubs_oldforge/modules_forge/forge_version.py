# modules_forge/forge_version.py of reForge main 3b56b268, verbatim (the harness sets "classic", Forge Classic's).
version = '1.0.0v2-v1.10.1RC'
