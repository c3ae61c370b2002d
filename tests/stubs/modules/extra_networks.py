"""Stand-in for modules/extra_networks.py (A1111 v1.10.1, 82a973c0): `<name:arg:...>` prompt
tags, and activate() calling each registered network with its arguments (or [] when the
prompt names none)."""

import re
from collections import defaultdict

from modules import errors

extra_network_registry = {}
re_extra_net = re.compile(r"<(\w+):([^>]+)>")


def register_extra_network(extra_network):
    extra_network_registry[extra_network.name] = extra_network


class ExtraNetworkParams:
    def __init__(self, items=None):
        self.items = items or []
        self.positional = []
        self.named = {}
        for item in self.items:
            parts = item.split("=", 2) if isinstance(item, str) else [item]
            if len(parts) == 2:
                self.named[parts[0]] = parts[1]
            else:
                self.positional.append(item)

    def __eq__(self, other):
        return self.items == other.items


class ExtraNetwork:
    def __init__(self, name):
        self.name = name

    def activate(self, p, params_list):
        raise NotImplementedError

    def deactivate(self, p):
        raise NotImplementedError


def activate(p, extra_network_data):
    for name, network in extra_network_registry.items():
        try:
            network.activate(p, list((extra_network_data or {}).get(name, [])))
        except Exception as e:
            errors.display(e, f"activating extra network {name}")


def deactivate(p, extra_network_data):
    for name, network in extra_network_registry.items():
        try:
            network.deactivate(p)
        except Exception as e:
            errors.display(e, f"deactivating extra network {name}")


def parse_prompt(prompt):
    res = defaultdict(list)

    def found(m):
        res[m.group(1)].append(ExtraNetworkParams(items=m.group(2).split(":")))
        return ""

    return re.sub(re_extra_net, found, prompt), res


def parse_prompts(prompts):
    res, extra_data = [], None
    for prompt in prompts:
        updated, parsed = parse_prompt(prompt)
        if extra_data is None:
            extra_data = parsed
        res.append(updated)
    return res, extra_data
