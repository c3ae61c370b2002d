"""Stand-in for extensions-builtin/Lora/networks.py + network.py + network_lora.py +
extra_networks_lora.py (A1111 v1.10.1, 82a973c0), imported as `networks` like the real one.

Kept: `loaded_networks` (each Network with te_multiplier / unet_multiplier), per-layer lazy
merging keyed by (name, te, unet, dyn) with a CPU backup (network_apply_weights), the
`lora_functional` mode (network_forward: restore the backup, add the LoRA in forward), and the
ExtraNetworkLora that turns `<lora:name:mult>` into load_networks(). The real one patches
torch.nn.Linear/Conv2d globally; here only LoraLinear/LoraConv2d (used by tiny_sd) route to it,
so no other test sees a patched torch.
"""

import torch

from modules import devices, extra_networks, shared

available_networks = {}  # name -> Network (tests register them)
loaded_networks = []
switch_log = []  # (layer name, wanted names) of every re-merge, for tests and benchmarks


class NetworkModuleLora:
    """network_lora.NetworkModuleLora: W += up @ down * multiplier * alpha / rank."""

    def __init__(self, net, up, down, alpha=None):
        self.network, self.up, self.down = net, up, down
        self.alpha = alpha if alpha is not None else down.shape[0]
        self.is_te = False

    def multiplier(self):
        return self.network.te_multiplier if self.is_te else self.network.unet_multiplier

    def calc_scale(self):
        return self.alpha / self.down.shape[0]

    def calc_updown(self, weight):
        updown = (self.up.flatten(1) @ self.down.flatten(1)).reshape(weight.shape).to(weight)
        return updown * self.multiplier() * self.calc_scale(), None

    def forward(self, x, y):
        layer = self.network.layer_of[self]
        delta = layer.functional_delta(x, self.up, self.down)
        return y + delta * self.multiplier() * self.calc_scale()


class Network:
    def __init__(self, name):
        self.name = name
        self.mentioned_name = name
        self.te_multiplier = 1.0
        self.unet_multiplier = 1.0
        self.dyn_dim = None
        self.modules = {}  # layer name -> NetworkModuleLora
        self.layer_of = {}


def load_networks(names, te_multipliers=None, unet_multipliers=None, dyn_dims=None):
    loaded_networks.clear()
    for i, name in enumerate(names):
        net = available_networks.get(name)
        if net is None:
            continue
        net.te_multiplier = te_multipliers[i] if te_multipliers else 1.0
        net.unet_multiplier = unet_multipliers[i] if unet_multipliers else 1.0
        net.dyn_dim = dyn_dims[i] if dyn_dims else None
        loaded_networks.append(net)


def network_restore_weights_from_backup(self):
    backup = getattr(self, "network_weights_backup", None)
    if backup is not None:
        self.weight.copy_(backup)


def network_reset_cached_weight(self):
    self.network_current_names = ()
    self.network_weights_backup = None
    self.network_bias_backup = None


def network_apply_weights(self):
    name = getattr(self, "network_layer_name", None)
    if name is None:
        return
    current = getattr(self, "network_current_names", ())
    wanted = tuple((x.name, x.te_multiplier, x.unet_multiplier, x.dyn_dim) for x in loaded_networks)
    if getattr(self, "network_weights_backup", None) is None and wanted != ():
        self.network_weights_backup = self.weight.detach().to(devices.cpu, copy=True)
    if current != wanted:
        switch_log.append((name, wanted))
        network_restore_weights_from_backup(self)
        with torch.no_grad():
            for net in loaded_networks:
                module = net.modules.get(name)
                if module is not None:
                    updown, _ = module.calc_updown(self.weight)
                    self.weight.copy_(self.weight + updown)
        self.network_current_names = wanted


def network_forward(org_module, input, original_forward):
    if len(loaded_networks) == 0:
        return original_forward(org_module, input)
    network_restore_weights_from_backup(org_module)
    network_reset_cached_weight(org_module)
    y = original_forward(org_module, input)
    for net in loaded_networks:
        module = net.modules.get(getattr(org_module, "network_layer_name", None))
        if module is not None:
            y = module.forward(input, y)
    return y


class LoraLinear(torch.nn.Linear):
    """A Linear whose forward is what lora_patches installs on torch.nn.Linear."""

    def forward(self, input):
        if shared.opts.lora_functional:
            return network_forward(self, input, torch.nn.Linear.forward)
        network_apply_weights(self)
        return torch.nn.Linear.forward(self, input)

    def functional_delta(self, x, up, down):
        return (x @ down.t()) @ up.t()  # network_lora: up_model(down_model(x)), never the full matrix


class LoraConv2d(torch.nn.Conv2d):
    def forward(self, input):
        if shared.opts.lora_functional:
            return network_forward(self, input, torch.nn.Conv2d.forward)
        network_apply_weights(self)
        return torch.nn.Conv2d.forward(self, input)

    def functional_delta(self, x, up, down):
        """network_lora: a rank-r conv with the layer's kernel (down), then a 1x1 conv (up)."""
        down = down.reshape(down.shape[0], *self.weight.shape[1:])
        h = torch.nn.functional.conv2d(x, down, None, self.stride, self.padding)
        return torch.nn.functional.conv2d(h, up[:, :, None, None])


def make_network(name, model, rank=2, seed=0, scale=0.1):
    """A random LoRA on every LoraLinear/LoraConv2d of `model` (what a LoRA file would hold)."""
    gen = torch.Generator().manual_seed(seed)
    net = Network(name)
    for layer_name, layer in model.named_modules():
        if isinstance(layer, (LoraLinear, LoraConv2d)):
            layer.network_layer_name = layer_name
            out_features, in_features = layer.weight.shape[0], layer.weight[0].numel()
            up = torch.randn(out_features, rank, generator=gen) * scale
            down = torch.randn(rank, in_features, generator=gen) * scale
            module = NetworkModuleLora(net, up, down)
            net.modules[layer_name] = module
            net.layer_of[module] = layer
    available_networks[name] = net
    return net


class ExtraNetworkLora(extra_networks.ExtraNetwork):
    """extra_networks_lora.py: `<lora:name:te_mult[:unet_mult]>`."""

    def __init__(self):
        super().__init__("lora")

    def activate(self, p, params_list):
        names, te, unet = [], [], []
        for params in params_list:
            names.append(params.positional[0])
            t = float(params.positional[1]) if len(params.positional) > 1 else 1.0
            te.append(t)
            unet.append(float(params.positional[2]) if len(params.positional) > 2 else t)
        load_networks(names, te, unet, [None] * len(names))

    def deactivate(self, p):
        pass
