"""Stand-in for backend/args.py (Forge dfdcbab6): the command-line flags and `dynamic_args`
(runtime settings the loader reads: online LoRA, the UNet storage dtype)."""

from types import SimpleNamespace

args = SimpleNamespace(disable_gpu_warning=True, pin_shared_memory=False)

dynamic_args = dict(
    embedding_dir=None,
    emphasis_name="Original",
    forge_unet_storage_dtype=None,
    online_lora=False,
)
