"""Stand-in for modules/sd_samplers.py (A1111 v1.10.1, 82a973c0): the sampler list,
find_sampler_config and create_sampler (sets sampler.config)."""

from modules import sd_samplers_kdiffusion, sd_samplers_lcm, sd_samplers_timesteps

all_samplers = [
    *sd_samplers_kdiffusion.samplers_data_k_diffusion,
    *sd_samplers_timesteps.samplers_data_timesteps,
    *sd_samplers_lcm.samplers_data_lcm,
]
all_samplers_map = {x.name: x for x in all_samplers}
samplers = all_samplers


def find_sampler_config(name):
    return all_samplers_map.get(name) if name is not None else all_samplers[0]


def create_sampler(name, model):
    config = find_sampler_config(name)
    assert config is not None, f"bad sampler name: {name}"
    sampler = config.constructor(model)
    sampler.config = config
    return sampler


def visible_sampler_names():
    return [x.name for x in samplers]
