"""A content-addressed cache: trained models as .pt files, run results as .json files.

Keys are hashes of everything that determines the content (specs, seeds, BENCH_VERSION), so a
changed setting never reads a stale entry and a rerun with the same settings trains nothing.
"""

import hashlib
import json
import os
from pathlib import Path

import torch

# Bump when a change to the bench's code changes what a cached model or result would be.
BENCH_VERSION = 1

DEFAULT_DIR = Path("~/.cache/sd-webui-w2sd/bench").expanduser()
ENV_VAR = "W2SD_BENCH_CACHE"


def default_dir() -> Path:
    """$W2SD_BENCH_CACHE if set, else ~/.cache/sd-webui-w2sd/bench."""
    return Path(os.environ[ENV_VAR]).expanduser() if os.environ.get(ENV_VAR) else DEFAULT_DIR


def key_of(*parts) -> str:
    """Short stable hash of JSON-serialisable parts (dataclasses go through their repr)."""
    text = json.dumps([BENCH_VERSION, *parts], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Cache:
    """Files under one root directory; writes go through a temporary name, so an
    interrupted run never leaves a half-written entry behind."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / f"{key}{suffix}"

    def _write(self, path: Path, save) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        save(tmp)
        os.replace(tmp, path)

    def load_model(self, key: str):
        path = self._path("models", key, ".pt")
        return torch.load(path, weights_only=False) if path.exists() else None

    def save_model(self, key: str, model) -> None:
        self._write(self._path("models", key, ".pt"), lambda p: torch.save(model, p))

    def load_result(self, key: str):
        path = self._path("runs", key, ".json")
        return json.loads(path.read_text()) if path.exists() else None

    def save_result(self, key: str, result: dict) -> None:
        self._write(self._path("runs", key, ".json"),
                    lambda p: p.write_text(json.dumps(result)))
