"""Stand-in for AUTOMATIC1111 WebUI's `modules` package (v1.10.1, commit 82a973c0), small enough
to read: each file mirrors the real file of the same name, copying the signatures and only the
behaviour W2SD's glue depends on. Used by tests/test_webui_*.py only (tests/conftest.py puts
tests/stubs on sys.path for them)."""
