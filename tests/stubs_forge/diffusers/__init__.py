"""Stand-in for the two `diffusers` names Forge's loader uses (Forge dfdcbab6 backend/loader.py:9,
42-44, 518): DiffusionPipeline.load_config(repo_dir) reads model_index.json, and a scheduler class
whose from_pretrained(dir) reads scheduler_config.json (prediction_type defaults to 'epsilon' as
in diffusers)."""

import json
import os
from types import SimpleNamespace


class DiffusionPipeline:
    @staticmethod
    def load_config(path):
        with open(os.path.join(path, "model_index.json"), encoding="utf8") as file:
            return json.load(file)


class EulerDiscreteScheduler:
    def __init__(self, **config):
        self.config = SimpleNamespace(**{"prediction_type": "epsilon", **config})

    @classmethod
    def from_pretrained(cls, path):
        with open(os.path.join(path, "scheduler_config.json"), encoding="utf8") as file:
            return cls(**json.load(file))
