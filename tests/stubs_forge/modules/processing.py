"""Stand-in for Forge's modules/processing.py (dfdcbab6), built on the A1111 stand-in's classes
(prompts, cond cache, Processed, infotext) with what Forge does differently around sampling:

- per batch, `forge_objects` is reset from `forge_objects_original`, LoRAs are activated (a new
  UNet patcher clone), then reset from `forge_objects_after_applying_lora` (P:937-957);
- before each pass `forge_objects` is reset again, then process_before_every_sampling runs
  (txt2img P:1373-1381, img2img P:1851-1859); the hires pass runs the hook TWICE, before and
  after a reset (P:1510-1526);
- no uncond is encoded when cfg_scale (hires: hr_cfg) is 1 (P:499-503, P:1586-1590);
- the hires pass has its own CFG `hr_cfg` (default 1.0 as in the real dataclass, P:1202) and
  distilled CFG; SdConditioning carries distilled_cfg_scale.
The hires pass upscales the latent (latent upscaler), as the A1111 stand-in's does.
"""

import torch

from modules import a1111_stand_in, extra_networks, prompt_parser, rng, sd_models, sd_samplers, shared
from modules.shared import opts, state

_a1111 = a1111_stand_in("processing")
Processed, create_infotext, opt_C, opt_f = _a1111.Processed, _a1111.create_infotext, _a1111.opt_C, _a1111.opt_f


def txt2img_image_conditioning(sd_model, x, width, height):
    """P:103-120: a masked-image conditioning for inpainting models, a dummy otherwise."""
    if sd_model.is_inpaint:
        return torch.cat([x.new_ones(x.shape[0], 1, *x.shape[2:]), torch.zeros_like(x)], dim=1)
    return x.new_zeros(x.shape[0], 5, 1, 1)


class _Forge:
    """What Forge's StableDiffusionProcessing adds to A1111's (mixed in before the A1111 class)."""

    distilled_cfg_scale = 3.5
    hr_distilled_cfg = 3.5

    def txt2img_image_conditioning(self, x, width=None, height=None):
        return txt2img_image_conditioning(self.sd_model, x, width or self.width, height or self.height)

    def cached_params(self, required_prompts, steps, extra_network_data, hires_steps=None, use_old_scheduling=False):
        return (self.distilled_cfg_scale, self.hr_distilled_cfg) + super().cached_params(
            required_prompts, steps, extra_network_data, hires_steps, use_old_scheduling)

    def reset_forge_objects(self, which="forge_objects_after_applying_lora"):
        self.sd_model.forge_objects = getattr(self.sd_model, which).shallow_copy()

    def setup_first_pass_conds(self):
        """P:490-505."""
        prompts = prompt_parser.SdConditioning(self.prompts, width=self.width, height=self.height,
                                               distilled_cfg_scale=self.distilled_cfg_scale)
        negative_prompts = prompt_parser.SdConditioning(self.negative_prompts, width=self.width, height=self.height,
                                                        is_negative_prompt=True,
                                                        distilled_cfg_scale=self.distilled_cfg_scale)
        sampler_config = sd_samplers.find_sampler_config(self.sampler_name)
        total_steps = sampler_config.total_steps(self.steps) if sampler_config else self.steps
        self.step_multiplier = total_steps // self.steps
        self.firstpass_steps = total_steps
        if self.cfg_scale == 1:
            self.uc = None
        else:
            self.uc = self.get_conds_with_caching(prompt_parser.get_learned_conditioning, negative_prompts,
                                                  total_steps, [self.cached_uc], self.extra_network_data)
        self.c = self.get_conds_with_caching(prompt_parser.get_multicond_learned_conditioning, prompts, total_steps,
                                             [self.cached_c], self.extra_network_data)

    def setup_conds(self):
        self.setup_first_pass_conds()


def process_images(p):
    if p.scripts is not None:
        p.scripts.before_process(p)
    stored_opts = {k: opts.data[k] for k in p.override_settings if k in opts.data}
    try:
        for k, v in p.override_settings.items():
            opts.set(k, v, is_api=True, run_callbacks=False)
        return process_images_inner(p)
    finally:
        for k, v in stored_opts.items():
            setattr(opts, k, v)


def process_images_inner(p):
    """P:852-1160 without saving, face restore and overlays."""
    seed = p.seed if p.seed != -1 else 1234
    p.setup_prompts()
    p.all_seeds = [int(seed) + x for x in range(len(p.all_prompts))]
    p.all_subseeds = [-1] * len(p.all_prompts)
    p.sd_model.extra_generation_params = {}
    if p.s_min_uncond is None:  # fill_fields_from_opts, P:255-260
        p.s_min_uncond = opts.s_min_uncond
    if p.refiner_checkpoint not in (None, "", "None", "none"):  # P:871-874
        p.refiner_checkpoint_info = sd_models.get_closet_checkpoint_match(p.refiner_checkpoint)
        if p.refiner_checkpoint_info is None:
            raise Exception(f"Could not find checkpoint with name {p.refiner_checkpoint}")

    if p.scripts is not None:
        p.scripts.process(p)

    images, latents, infotexts = [], [], []
    with torch.inference_mode():
        p.init(p.all_prompts, p.all_seeds, p.all_subseeds)
    if state.job_count == -1:
        state.job_count = p.n_iter

    for n in range(p.n_iter):
        p.iteration = n
        if state.skipped:
            state.skipped = False
        if state.interrupted or state.stopping_generation:
            break

        sd_models.forge_model_reload()
        p.reset_forge_objects("forge_objects_original")
        p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
        p.negative_prompts = p.all_negative_prompts[n * p.batch_size:(n + 1) * p.batch_size]
        p.seeds = p.all_seeds[n * p.batch_size:(n + 1) * p.batch_size]
        p.subseeds = p.all_subseeds[n * p.batch_size:(n + 1) * p.batch_size]
        p.rng = rng.ImageRNG((shared.sd_model.forge_objects.vae.latent_channels, p.height // opt_f, p.width // opt_f),
                             p.seeds)

        if p.scripts is not None:
            p.scripts.before_process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)

        p.parse_extra_network_prompts()
        if not p.disable_extra_networks:
            extra_networks.activate(p, p.extra_network_data)
        p.reset_forge_objects()

        if p.scripts is not None:
            p.scripts.process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)

        p.setup_conds()
        p.extra_generation_params.update(p.sd_model.extra_generation_params)

        _a1111.sample_batch(p, n, images, latents, infotexts)

    return _a1111.finish_processing(p, images, latents, infotexts)


class StableDiffusionProcessingTxt2Img(_Forge, _a1111.StableDiffusionProcessingTxt2Img):
    def __init__(self, hr_cfg=1.0, **kwargs):
        super().__init__(**kwargs)
        self.hr_cfg = hr_cfg

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        """P:1342-1428 (generating the first pass; no hires checkpoint switch)."""
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        x = self.rng.next()
        self.reset_forge_objects()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(self, x=x, noise=x, c=conditioning,
                                                       uc=unconditional_conditioning)
        samples = self.sampler.sample(self, x, conditioning, unconditional_conditioning,
                                      image_conditioning=self.txt2img_image_conditioning(x))
        del x
        if not self.enable_hr:
            return samples
        return self.sample_hr_pass(samples, None, seeds, subseeds, subseed_strength, prompts)

    def sample_hr_pass(self, samples, decoded_samples, seeds, subseeds, subseed_strength, prompts):
        """P:1430-1540."""
        if shared.state.interrupted:
            return samples
        self.is_hr_pass = True
        self.sampler = sd_samplers.create_sampler(self.hr_sampler_name or self.sampler_name, self.sd_model)
        samples = torch.nn.functional.interpolate(
            samples, size=(self.hr_upscale_to_y // opt_f, self.hr_upscale_to_x // opt_f), mode="nearest")
        image_conditioning = self.txt2img_image_conditioning(samples)
        shared.state.nextjob()
        self.rng = rng.ImageRNG(samples.shape[1:], self.seeds)
        noise = self.rng.next()
        if not self.disable_extra_networks:
            extra_networks.activate(self, self.hr_extra_network_data)
        self.calculate_hr_conds()
        if self.scripts is not None:
            self.scripts.before_hr(self)
            self.scripts.process_before_every_sampling(p=self, x=samples, noise=noise, c=self.hr_c, uc=self.hr_uc)
        self.reset_forge_objects()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(self, x=samples, noise=noise, c=self.hr_c, uc=self.hr_uc)
        samples = self.sampler.sample_img2img(self, samples, noise, self.hr_c, self.hr_uc,
                                              steps=self.hr_second_pass_steps or self.steps,
                                              image_conditioning=image_conditioning)
        self.sampler = None
        self.is_hr_pass = False
        return samples

    def calculate_hr_conds(self):
        """P:1575-1592."""
        if self.hr_c is not None:
            return
        hr_prompts = prompt_parser.SdConditioning(self.hr_prompts, width=self.hr_upscale_to_x,
                                                  height=self.hr_upscale_to_y,
                                                  distilled_cfg_scale=self.hr_distilled_cfg)
        hr_negative_prompts = prompt_parser.SdConditioning(self.hr_negative_prompts, width=self.hr_upscale_to_x,
                                                           height=self.hr_upscale_to_y, is_negative_prompt=True,
                                                           distilled_cfg_scale=self.hr_distilled_cfg)
        sampler_config = sd_samplers.find_sampler_config(self.hr_sampler_name or self.sampler_name)
        steps = self.hr_second_pass_steps or self.steps
        total_steps = sampler_config.total_steps(steps) if sampler_config else steps
        if self.hr_cfg == 1:
            self.hr_uc = None
        else:
            self.hr_uc = self.get_conds_with_caching(prompt_parser.get_learned_conditioning, hr_negative_prompts,
                                                     self.firstpass_steps, [self.cached_hr_uc, self.cached_uc],
                                                     self.hr_extra_network_data, total_steps)
        self.hr_c = self.get_conds_with_caching(prompt_parser.get_multicond_learned_conditioning, hr_prompts,
                                                self.firstpass_steps, [self.cached_hr_c, self.cached_c],
                                                self.hr_extra_network_data, total_steps)

    def setup_conds(self):
        """P:1594-1616 (first-pass conds, hires conds computed later in the hires pass)."""
        if self.is_hr_pass:
            self.hr_c = None
            self.calculate_hr_conds()
            return
        self.setup_first_pass_conds()
        self.hr_uc = None
        self.hr_c = None


class StableDiffusionProcessingImg2Img(_Forge, _a1111.StableDiffusionProcessingImg2Img):
    def init(self, all_prompts, all_seeds, all_subseeds):
        self.extra_generation_params["Denoising strength"] = self.denoising_strength
        self.image_cfg_scale = None
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        image = torch.stack(list(self.init_images))
        if len(self.init_images) == 1:
            image = image.repeat(self.batch_size, 1, 1, 1)
        self.init_latent = self.sd_model.encode_first_stage(image * 2 - 1)
        if self.image_mask is not None:
            latmask = torch.nn.functional.avg_pool2d(self.image_mask[None, None].float(), opt_f)[0, 0].round()
            latmask = latmask.expand(self.init_latent.shape[1], -1, -1)
            self.mask = 1.0 - latmask
            self.nmask = latmask.clone()
        self.image_conditioning = self.txt2img_image_conditioning(self.init_latent)

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        """P:1844-1880."""
        x = self.rng.next()
        self.reset_forge_objects()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(self, x=self.init_latent, noise=x, c=conditioning,
                                                       uc=unconditional_conditioning)
        samples = self.sampler.sample_img2img(self, self.init_latent, x, conditioning, unconditional_conditioning,
                                              image_conditioning=self.image_conditioning)
        if self.mask is not None:
            from modules import scripts

            blended_samples = samples * self.nmask + self.init_latent * self.mask
            if self.scripts is not None:
                mba = scripts.MaskBlendArgs(samples, self.nmask, self.init_latent, self.mask, blended_samples)
                self.scripts.on_mask_blend(self, mba)
                blended_samples = mba.blended_latent
            samples = blended_samples
        return samples
