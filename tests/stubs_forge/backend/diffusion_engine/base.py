"""Stand-in for backend/diffusion_engine/base.py (Forge dfdcbab6): ForgeObjects (base.py:7-20,
a shallow copy keeps the same patcher objects) and the engine base (base.py:23-60)."""


class ForgeObjects:
    def __init__(self, unet, clip, vae, clipvision):
        self.unet = unet
        self.clip = clip
        self.vae = vae
        self.clipvision = clipvision

    def shallow_copy(self):
        return ForgeObjects(self.unet, self.clip, self.vae, self.clipvision)


class ForgeDiffusionEngine:
    matched_guesses = []

    def __init__(self, estimated_config, huggingface_components):
        self.model_config = estimated_config
        self.is_inpaint = estimated_config.inpaint_model()
        self.forge_objects = None
        self.forge_objects_original = None
        self.forge_objects_after_applying_lora = None
        self.current_lora_hash = str([])
        self.is_sd1 = self.is_sd2 = self.is_sdxl = self.is_sd3 = False
        self.use_distilled_cfg_scale = False
        self.extra_generation_params = {}
        self.comments = []

    def set_clip_skip(self, clip_skip):
        pass
