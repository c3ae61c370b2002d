"""Stand-in for modules/sd_models.py (A1111 v1.10.1, 82a973c0): the checkpoint list
(CheckpointInfo, checkpoints_list by title, checkpoint_aliases by every id),
get_closet_checkpoint_match, checkpoint_tiles, model_hash, select_checkpoint. Loading a
checkpoint (reload_model_weights) makes shared.sd_model the model a test put in `loadable` for
its file; for any other file it is a no-op (the tests set shared.sd_model themselves)."""

import hashlib
import os
import re

from modules import shared

checkpoints_list = {}
checkpoint_aliases = {}
model_path = os.path.abspath("models/Stable-diffusion")


def model_hash(filename):
    """The old short hash: 64 KiB at offset 1 MiB."""
    try:
        with open(filename, "rb") as file:
            m = hashlib.sha256()
            file.seek(0x100000)
            m.update(file.read(0x10000))
            return m.hexdigest()[0:8]
    except FileNotFoundError:
        return "NOFILE"


class CheckpointInfo:
    def __init__(self, filename):
        self.filename = filename
        self.is_safetensors = os.path.splitext(filename)[1].lower() == ".safetensors"
        name = os.path.basename(filename)
        self.name = name
        self.name_for_extra = os.path.splitext(name)[0]
        self.model_name = self.name_for_extra
        self.hash = model_hash(filename)
        self.sha256 = None
        self.shorthash = None
        self.title = name
        self.short_title = self.name_for_extra
        self.ids = [self.hash, self.model_name, self.title, name, self.name_for_extra, f"{name} [{self.hash}]"]

    def register(self):
        checkpoints_list[self.title] = self
        for id_ in self.ids:
            checkpoint_aliases[id_] = self


def list_models(directory=None):
    """The real one scans models/Stable-diffusion for .ckpt and .safetensors files."""
    checkpoints_list.clear()
    checkpoint_aliases.clear()
    directory = directory or model_path
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if os.path.splitext(name)[1].lower() in (".ckpt", ".safetensors"):
            CheckpointInfo(os.path.join(directory, name)).register()


def checkpoint_tiles(use_short=False):
    return [x.short_title if use_short else x.title for x in checkpoints_list.values()]


re_strip_checksum = re.compile(r"\s*\[[^]]+]\s*$")


def get_closet_checkpoint_match(search_string):
    if not search_string:
        return None
    info = checkpoint_aliases.get(search_string)
    if info is not None:
        return info
    found = sorted([i for i in checkpoints_list.values() if search_string in i.title], key=lambda x: len(x.title))
    if found:
        return found[0]
    stripped = re.sub(re_strip_checksum, "", search_string)
    found = sorted([i for i in checkpoints_list.values() if stripped in i.title], key=lambda x: len(x.title))
    return found[0] if found else None


def select_checkpoint():
    """sd_models.py:218-240: the checkpoint of opts.sd_model_checkpoint, else the list's first."""
    checkpoint_info = checkpoint_aliases.get(shared.opts.sd_model_checkpoint, None)
    if checkpoint_info is not None:
        return checkpoint_info
    if len(checkpoints_list) == 0:
        raise FileNotFoundError("No checkpoints found.")
    return next(iter(checkpoints_list.values()))


# checkpoint filename -> the model loading it gives (a test's TinySD), as the real one's cache of
# loaded models (reuse_model_from_already_loaded) would hand it back.
loadable = {}


def reload_model_weights(sd_model=None, info=None, forced_reload=False):
    """sd_models.py:940-1000: load `info` (default: select_checkpoint()) unless it is loaded."""
    checkpoint_info = info or (select_checkpoint() if checkpoints_list else None)
    model = loadable.get(getattr(checkpoint_info, "filename", None))
    if model is None or model is shared.sd_model:
        return shared.sd_model
    model.sd_checkpoint_info = checkpoint_info
    model.sd_model_checkpoint = checkpoint_info.filename
    shared.sd_model = model
    return model


def apply_token_merging(sd_model, token_merging_ratio):
    pass


def apply_alpha_schedule_override(sd_model, p=None):
    pass


class SkipWritingToConfig:
    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False
