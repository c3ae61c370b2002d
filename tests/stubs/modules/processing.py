"""Stand-in for modules/processing.py (A1111 v1.10.1, 82a973c0): StableDiffusionProcessing
(Txt2Img with the hires-fix second pass, Img2Img with inpainting masks), process_images and
process_images_inner with the real order of script hooks, the cond cache
(get_conds_with_caching / cached_params), Processed and a short infotext (quoted as the real one).

Images stay tensors: `Processed.images` holds each image's decoded tensor and
`Processed.latents` the sampled latents, so tests can compare runs bit for bit. Left out:
face restore, color correction, saving, overlays, upscalers (hires upscales the latent)."""

from __future__ import annotations

import torch

from modules import devices, extra_networks, infotext_utils, prompt_parser, rng, sd_models, sd_samplers, shared
from modules.shared import opts, state

opt_C, opt_f = 4, 8


def txt2img_image_conditioning(sd_model, x, width, height):
    if sd_model.model.conditioning_key in {"hybrid", "concat"}:
        mask = x.new_ones(x.shape[0], 1, *x.shape[2:])
        return torch.cat([mask, torch.zeros_like(x)], dim=1)
    return x.new_zeros(x.shape[0], 5, 1, 1)


class StableDiffusionProcessing:
    cached_uc = [None, None]
    cached_c = [None, None]

    def __init__(self, prompt="", negative_prompt="", seed=-1, sampler_name="Euler", batch_size=1, n_iter=1,
                 steps=10, cfg_scale=7.0, width=64, height=64, extra_generation_params=None, eta=None,
                 denoising_strength=None, s_min_uncond=None, override_settings=None, refiner_checkpoint=None,
                 refiner_switch_at=None, disable_extra_networks=False, styles=None, scheduler=None, **kwargs):
        self.prompt, self.negative_prompt, self.seed = prompt, negative_prompt, seed
        self.sampler_name, self.scheduler = sampler_name, scheduler
        self.batch_size, self.n_iter, self.steps, self.cfg_scale = batch_size, n_iter, steps, cfg_scale
        self.width, self.height, self.eta = width, height, eta
        self.denoising_strength, self.s_min_uncond = denoising_strength, s_min_uncond
        self.extra_generation_params = dict(extra_generation_params or {})
        self.override_settings = dict(override_settings or {})
        self.refiner_checkpoint, self.refiner_switch_at = refiner_checkpoint, refiner_switch_at
        self.refiner_checkpoint_info = None
        self.disable_extra_networks = disable_extra_networks
        self.styles = styles or []
        self.scripts = None
        self.script_args = []
        self.comments = {}
        self.sampler = None
        self.is_hr_pass = False
        self.c = self.uc = None
        self.rng = None
        self.step_multiplier = 1
        self.iteration = 0
        self.extra_network_data = None
        self.subseed, self.subseed_strength = -1, 0
        self.sampler_noise_scheduler_override = None
        self.is_api = False
        self.cached_uc = StableDiffusionProcessing.cached_uc
        self.cached_c = StableDiffusionProcessing.cached_c
        for key, value in kwargs.items():
            setattr(self, key, value)

    @property
    def sd_model(self):
        return shared.sd_model

    def fill_fields_from_opts(self):
        self.s_min_uncond = self.s_min_uncond if self.s_min_uncond is not None else opts.s_min_uncond

    def comment(self, text):
        self.comments[text] = 1

    def txt2img_image_conditioning(self, x, width=None, height=None):
        return txt2img_image_conditioning(self.sd_model, x, width or self.width, height or self.height)

    def init(self, all_prompts, all_seeds, all_subseeds):
        pass

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        raise NotImplementedError()

    def close(self):
        self.sampler = None
        self.c = None
        self.uc = None

    def get_token_merging_ratio(self, for_hr=False):
        return 0

    def setup_prompts(self):
        self.all_prompts = self.batch_size * self.n_iter * [self.prompt]
        self.all_negative_prompts = [self.negative_prompt] * len(self.all_prompts)
        self.main_prompt, self.main_negative_prompt = self.all_prompts[0], self.all_negative_prompts[0]

    def cached_params(self, required_prompts, steps, extra_network_data, hires_steps=None, use_old_scheduling=False):
        return (
            required_prompts, steps, hires_steps, use_old_scheduling, opts.CLIP_stop_at_last_layers,
            shared.sd_model.sd_checkpoint_info, extra_network_data, self.width, self.height, opts.emphasis,
        )

    def get_conds_with_caching(self, function, required_prompts, steps, caches, extra_network_data, hires_steps=None):
        cached_params = self.cached_params(required_prompts, steps, extra_network_data, hires_steps, shared.opts.use_old_scheduling)
        for cache in caches:
            if cache[0] is not None and cached_params == cache[0]:
                return cache[1]
        cache = caches[0]
        with devices.autocast():
            cache[1] = function(shared.sd_model, required_prompts, steps, hires_steps, shared.opts.use_old_scheduling)
        cache[0] = cached_params
        return cache[1]

    def setup_conds(self):
        prompts = prompt_parser.SdConditioning(self.prompts, width=self.width, height=self.height)
        negative_prompts = prompt_parser.SdConditioning(self.negative_prompts, width=self.width, height=self.height, is_negative_prompt=True)
        sampler_config = sd_samplers.find_sampler_config(self.sampler_name)
        total_steps = sampler_config.total_steps(self.steps) if sampler_config else self.steps
        self.step_multiplier = total_steps // self.steps
        self.firstpass_steps = total_steps
        self.uc = self.get_conds_with_caching(prompt_parser.get_learned_conditioning, negative_prompts, total_steps, [self.cached_uc], self.extra_network_data)
        self.c = self.get_conds_with_caching(prompt_parser.get_multicond_learned_conditioning, prompts, total_steps, [self.cached_c], self.extra_network_data)

    def get_conds(self):
        return self.c, self.uc

    def parse_extra_network_prompts(self):
        self.prompts, self.extra_network_data = extra_networks.parse_prompts(self.prompts)


class Processed:
    def __init__(self, p, images_list, latents=None, infotexts=None):
        self.images = images_list
        self.latents = latents or []
        self.prompt = p.prompt
        self.seed = p.all_seeds[0] if getattr(p, "all_seeds", None) else p.seed
        self.comments = "".join(f"{comment}\n" for comment in p.comments)
        self.extra_generation_params = p.extra_generation_params
        self.infotexts = infotexts or []
        self.info = self.infotexts[0] if self.infotexts else ""


def create_infotext(p, index=0):
    params = {"Steps": p.steps, "Sampler": p.sampler_name, "CFG scale": p.cfg_scale, "Seed": p.all_seeds[index]}
    for key, value in p.extra_generation_params.items():
        params[key] = value(p=p, index=index) if callable(value) else value
    text = ", ".join(f"{k}: {infotext_utils.quote(v)}" for k, v in params.items() if v is not None)  # processing.py:812
    return f"{p.all_prompts[index]}\nNegative prompt: {p.all_negative_prompts[index]}\n{text}"


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
    seed = p.seed if p.seed != -1 else 1234
    if p.refiner_checkpoint not in (None, "", "None", "none"):
        p.refiner_checkpoint_info = sd_models.get_closet_checkpoint_match(p.refiner_checkpoint)
        if p.refiner_checkpoint_info is None:
            raise Exception(f"Could not find checkpoint with name {p.refiner_checkpoint}")

    p.fill_fields_from_opts()
    p.setup_prompts()
    p.all_seeds = [int(seed) + x for x in range(len(p.all_prompts))]
    p.all_subseeds = [-1] * len(p.all_prompts)

    if p.scripts is not None:
        p.scripts.process(p)

    images, latents, infotexts = [], [], []
    with torch.no_grad(), p.sd_model.ema_scope():
        p.init(p.all_prompts, p.all_seeds, p.all_subseeds)
        if state.job_count == -1:
            state.job_count = p.n_iter

        for n in range(p.n_iter):
            p.iteration = n
            if state.skipped:
                state.skipped = False
            if state.interrupted or state.stopping_generation:
                break

            sd_models.reload_model_weights()  # model can be changed for example by refiner (P:941)

            p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
            p.negative_prompts = p.all_negative_prompts[n * p.batch_size:(n + 1) * p.batch_size]
            p.seeds = p.all_seeds[n * p.batch_size:(n + 1) * p.batch_size]
            p.subseeds = p.all_subseeds[n * p.batch_size:(n + 1) * p.batch_size]
            p.rng = rng.ImageRNG((opt_C, p.height // opt_f, p.width // opt_f), p.seeds)

            if p.scripts is not None:
                p.scripts.before_process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)

            p.parse_extra_network_prompts()
            if not p.disable_extra_networks:
                extra_networks.activate(p, p.extra_network_data)

            if p.scripts is not None:
                p.scripts.process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)

            p.setup_conds()

            sample_batch(p, n, images, latents, infotexts)

    return finish_processing(p, images, latents, infotexts)


def sample_batch(p, n, images, latents, infotexts):
    """One batch from p.sample to its images and infotexts (the end of the batch loop; Forge's
    is the same)."""
    samples = p.sample(conditioning=p.c, unconditional_conditioning=p.uc, seeds=p.seeds, subseeds=p.subseeds,
                       subseed_strength=p.subseed_strength, prompts=p.prompts)
    if p.scripts is not None:
        from modules import scripts

        ps = scripts.PostSampleArgs(samples)
        p.scripts.post_sample(p, ps)
        samples = ps.samples

    decoded = samples if getattr(samples, "already_decoded", False) else p.sd_model.decode_first_stage(samples)
    x_samples = torch.clamp((decoded + 1.0) / 2.0, min=0.0, max=1.0)
    state.nextjob()

    if p.scripts is not None:
        p.scripts.postprocess_batch(p, x_samples, batch_number=n)

    for i, x_sample in enumerate(x_samples):
        images.append(x_sample)
        infotexts.append(create_infotext(p, n * p.batch_size + i))
    latents.extend(samples)


def finish_processing(p, images, latents, infotexts):
    """After the batch loop: deactivate extra networks, build Processed, run postprocess."""
    if not p.disable_extra_networks and p.extra_network_data:
        extra_networks.deactivate(p, p.extra_network_data)

    res = Processed(p, images, latents, infotexts)
    if p.scripts is not None:
        p.scripts.postprocess(p, res)
    return res


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    cached_hr_uc = [None, None]
    cached_hr_c = [None, None]

    def __init__(self, enable_hr=False, hr_scale=2.0, hr_second_pass_steps=0, hr_sampler_name=None, hr_prompt="",
                 hr_negative_prompt="", denoising_strength=0.75, **kwargs):
        super().__init__(denoising_strength=denoising_strength, **kwargs)
        self.enable_hr, self.hr_scale, self.hr_second_pass_steps = enable_hr, hr_scale, hr_second_pass_steps
        self.hr_sampler_name, self.hr_prompt, self.hr_negative_prompt = hr_sampler_name, hr_prompt, hr_negative_prompt
        self.hr_c = self.hr_uc = None
        self.hr_extra_network_data = None
        self.cached_hr_uc = StableDiffusionProcessingTxt2Img.cached_hr_uc
        self.cached_hr_c = StableDiffusionProcessingTxt2Img.cached_hr_c

    def init(self, all_prompts, all_seeds, all_subseeds):
        if self.enable_hr:
            self.extra_generation_params["Denoising strength"] = self.denoising_strength
            self.hr_upscale_to_x = int(self.width * self.hr_scale)
            self.hr_upscale_to_y = int(self.height * self.hr_scale)
            if self.hr_second_pass_steps:
                self.extra_generation_params["Hires steps"] = self.hr_second_pass_steps

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        x = self.rng.next()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(p=self, x=x, noise=x, c=conditioning, uc=unconditional_conditioning)
        samples = self.sampler.sample(self, x, conditioning, unconditional_conditioning, image_conditioning=self.txt2img_image_conditioning(x))
        del x
        if not self.enable_hr:
            return samples
        return self.sample_hr_pass(samples, None, seeds, subseeds, subseed_strength, prompts)

    def sample_hr_pass(self, samples, decoded_samples, seeds, subseeds, subseed_strength, prompts):
        if shared.state.interrupted:
            return samples
        self.is_hr_pass = True
        self.sampler = sd_samplers.create_sampler(self.hr_sampler_name or self.sampler_name, self.sd_model)
        samples = torch.nn.functional.interpolate(samples, size=(self.hr_upscale_to_y // opt_f, self.hr_upscale_to_x // opt_f), mode="nearest")
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

        samples = self.sampler.sample_img2img(self, samples, noise, self.hr_c, self.hr_uc, steps=self.hr_second_pass_steps or self.steps,
                                              image_conditioning=image_conditioning)
        self.sampler = None
        self.is_hr_pass = False
        return samples

    def close(self):
        super().close()
        self.hr_c = None
        self.hr_uc = None

    def setup_prompts(self):
        super().setup_prompts()
        if not self.enable_hr:
            return
        self.all_hr_prompts = self.batch_size * self.n_iter * [self.hr_prompt or self.prompt]
        self.all_hr_negative_prompts = self.batch_size * self.n_iter * [self.hr_negative_prompt or self.negative_prompt]

    def calculate_hr_conds(self):
        if self.hr_c is not None:
            return
        hr_prompts = prompt_parser.SdConditioning(self.hr_prompts, width=self.hr_upscale_to_x, height=self.hr_upscale_to_y)
        hr_negative_prompts = prompt_parser.SdConditioning(self.hr_negative_prompts, width=self.hr_upscale_to_x, height=self.hr_upscale_to_y, is_negative_prompt=True)
        sampler_config = sd_samplers.find_sampler_config(self.hr_sampler_name or self.sampler_name)
        steps = self.hr_second_pass_steps or self.steps
        total_steps = sampler_config.total_steps(steps) if sampler_config else steps
        self.hr_uc = self.get_conds_with_caching(prompt_parser.get_learned_conditioning, hr_negative_prompts, self.firstpass_steps, [self.cached_hr_uc, self.cached_uc], self.hr_extra_network_data, total_steps)
        self.hr_c = self.get_conds_with_caching(prompt_parser.get_multicond_learned_conditioning, hr_prompts, self.firstpass_steps, [self.cached_hr_c, self.cached_c], self.hr_extra_network_data, total_steps)

    def setup_conds(self):
        if self.is_hr_pass:
            self.hr_c = None
            self.calculate_hr_conds()
            return
        super().setup_conds()
        self.hr_uc = None
        self.hr_c = None

    def get_conds(self):
        if self.is_hr_pass:
            return self.hr_c, self.hr_uc
        return super().get_conds()

    def parse_extra_network_prompts(self):
        res = super().parse_extra_network_prompts()
        if self.enable_hr:
            self.hr_prompts = self.all_hr_prompts[self.iteration * self.batch_size:(self.iteration + 1) * self.batch_size]
            self.hr_negative_prompts = self.all_hr_negative_prompts[self.iteration * self.batch_size:(self.iteration + 1) * self.batch_size]
            self.hr_prompts, self.hr_extra_network_data = extra_networks.parse_prompts(self.hr_prompts)
        return res


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    """init_images: tensors [3, H, W] in [0, 1]; mask: a tensor [H, W], 1 where to inpaint."""

    def __init__(self, init_images=None, mask=None, denoising_strength=0.75, image_cfg_scale=None, **kwargs):
        super().__init__(denoising_strength=denoising_strength, **kwargs)
        self.init_images = init_images or []
        self.image_mask = mask
        self.mask = self.nmask = None
        self.image_cfg_scale = image_cfg_scale
        self.init_latent = None
        self.image_conditioning = None

    def init(self, all_prompts, all_seeds, all_subseeds):
        self.extra_generation_params["Denoising strength"] = self.denoising_strength
        self.image_cfg_scale = None
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        image = torch.stack([img for img in self.init_images])
        if len(self.init_images) == 1:
            image = image.repeat(self.batch_size, 1, 1, 1)
        self.init_latent = self.sd_model.get_first_stage_encoding(self.sd_model.encode_first_stage(image * 2 - 1))
        if self.image_mask is not None:
            latmask = torch.nn.functional.avg_pool2d(self.image_mask[None, None].float(), opt_f)[0, 0].round()
            latmask = latmask.expand(self.init_latent.shape[1], -1, -1)
            self.mask = 1.0 - latmask
            self.nmask = latmask.clone()
            self.extra_generation_params["Mask blur"] = 0
        if self.sd_model.model.conditioning_key in {"hybrid", "concat"}:
            conditioning_mask = self.nmask[:1][None] if self.nmask is not None else self.init_latent.new_ones(1, 1, *self.init_latent.shape[2:])
            conditioning_mask = conditioning_mask.expand(self.init_latent.shape[0], 1, -1, -1)
            masked = self.init_latent * (1 - conditioning_mask)
            self.image_conditioning = torch.cat([conditioning_mask, masked], dim=1)
        else:
            self.image_conditioning = self.init_latent.new_zeros(self.init_latent.shape[0], 5, 1, 1)

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        x = self.rng.next()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(p=self, x=self.init_latent, noise=x, c=conditioning, uc=unconditional_conditioning)
        samples = self.sampler.sample_img2img(self, self.init_latent, x, conditioning, unconditional_conditioning, image_conditioning=self.image_conditioning)
        if self.mask is not None:
            from modules import scripts

            blended_samples = samples * self.nmask + self.init_latent * self.mask
            if self.scripts is not None:
                mba = scripts.MaskBlendArgs(samples, self.nmask, self.init_latent, self.mask, blended_samples)
                self.scripts.on_mask_blend(self, mba)
                blended_samples = mba.blended_latent
            samples = blended_samples
        return samples
