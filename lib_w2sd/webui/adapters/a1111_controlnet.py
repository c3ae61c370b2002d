"""The units of the sd-webui-controlnet extension in single UNet calls, on AUTOMATIC1111 1.10.
Written against Mikubill/sd-webui-controlnet v1.1.455 (commit 56cec5b2): scripts/controlnet.py,
scripts/hook.py and scripts/ipadapter/plugable_ipadapter.py.

How the extension runs its units:
- Script.process builds one ControlParams per enabled unit (controlnet.py:1034-1060), hooks the
  UNet with a UnetHook kept on `Script.latest_network` until postprocess (controlnet.py:1199-1201),
  and marks the conds with an extra first token telling cond from uncond rows (hook.py:48-78,
  applied by its wrapper of p.sample, hook.py:458-470, 988).
- The hook replaces the UNet's forward (hook.py:992) by its own, which walks `control_params` on
  EVERY call (hook.py:472-890): each ControlNet / T2I-Adapter / reference / Revision unit that is
  not guidance_stopped runs its control model and is added with `param.weight` (or its
  `advanced_weighting` per layer, hook.py:630-662, 773).
- IP-Adapter units patch the cross-attention once (controlnet.py:1148-1179) and read
  `PlugableIPAdapter.weight` (a number, or a dict per layer) on every call; at 0 a patch returns
  before computing anything (plugable_ipadapter.py:169-173, 279-303).

One call at multiplier m: every ControlParams weight and advanced weighting, and every IP-Adapter
weight, times m; the same objects are put back afterwards. At 0 the call runs with an empty
`control_params` list (no control model runs, no reference pass: the hook's forward is then the
UNet's own computation) and IP-Adapter weights at 0. Conds W2SD encodes itself (a weak prompt)
get the same marking as the generation's, or the hook would misread them; a UNet the hook is not
on (W2SD's weak checkpoint) gets the conds with the marking taken off.
Not switched: ControlNet-LLLite units (SDXL; weights kept in the UNet's layers, controlnet_lllite.py)
and the batch option "style align" (not a unit); they act in every call alike.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator, List, Optional

TITLE = "ControlNet"  # Script.title() (controlnet.py:319-320)
_IP_ADAPTER, _LLLITE = "IPAdapter", "Controlllite"  # ControlModelType names (enums.py:157-177)


def _script(p):
    """The extension's script of this generation's tab, or None when it is not loaded."""
    runner = getattr(p, "scripts", None)
    return next((s for s in getattr(runner, "alwayson_scripts", []) or []
                 if hasattr(s, "latest_network") and s.title() == TITLE), None)


def _hook(p):
    """The UnetHook of the current generation (None: no unit enabled)."""
    script = _script(p)
    return getattr(script, "latest_network", None) if script is not None else None


def _kind(param) -> str:
    return getattr(param.control_model_type, "name", "")


def active_params(p, hires: bool) -> Optional[List]:
    """The ControlParams acting on this pass's UNet calls that W2SD can scale; None without the
    extension. A unit limited to one pass by its hires-fix option is left out of the other
    (hook.py:221-231; IP-Adapter patches ignore that option)."""
    if _script(p) is None:
        return None
    hook = _hook(p)
    params = list(getattr(hook, "control_params", None) or [])
    return [param for param in params if _kind(param) != _LLLITE
            and (_kind(param) == _IP_ADAPTER or not param.disabled_by_hr_option(hires))]


def units(p, hires: bool) -> Optional[int]:
    params = active_params(p, hires)
    return None if params is None else len(params)


def _scaled(weight, multiplier: float):
    if isinstance(weight, dict):
        return {key: value * multiplier for key, value in weight.items()}
    if isinstance(weight, (list, tuple)):
        return [value * multiplier for value in weight]
    return weight * multiplier


@contextlib.contextmanager
def multiplier(p, multiplier: float) -> Iterator[None]:
    """The enclosed UNet calls with every unit's weight times `multiplier` (0: without the units)."""
    hook = _hook(p)
    params = list(getattr(hook, "control_params", None) or [])
    if not params:
        yield
        return
    saved_params = hook.control_params
    saved = [(param, param.weight, param.advanced_weighting) for param in params]
    adapters = [param.control_model for param in params if _kind(param) == _IP_ADAPTER]
    saved_adapters = [(model, model.weight) for model in adapters]
    try:
        for param, weight, advanced in saved:
            param.weight = _scaled(weight, multiplier)
            if advanced is not None:
                param.advanced_weighting = _scaled(advanced, multiplier)
        for model, weight in saved_adapters:
            model.weight = _scaled(weight, multiplier)
        if multiplier == 0:
            hook.control_params = []
        yield
    finally:
        hook.control_params = saved_params
        for param, weight, advanced in saved:
            param.weight, param.advanced_weighting = weight, advanced
        for model, weight in saved_adapters:
            model.weight = weight


def mark_like(p, conds, own, positive: bool):
    """`conds` marked as the extension marks the generation's own (hook.py:48-78) when `own`, the
    pass's own conds of the same polarity, carry the mark: the hook reads a batch as marked only
    when every row is (hook.py:81-111), and the hires pass's own conds may be unmarked."""
    hook = _hook(p)
    module = sys.modules.get(type(hook).__module__) if hook is not None else None
    if conds is None or own is None or not hasattr(module, "mark_prompt_context"):
        return conds
    if not module.prompt_context_is_marked(_first_cond(own)):
        return conds
    return module.mark_prompt_context(conds, positive=positive)


def _first_cond(conds):
    """The first prompt's first schedule entry as a [tokens, dim] tensor, of a cond
    (MulticondLearnedConditioning) or an uncond (a list of ScheduledPromptConditioning lists)."""
    entry = conds.batch[0][0].schedules[0] if hasattr(conds, "batch") else conds[0][0]
    return entry.cond["crossattn"] if isinstance(entry.cond, dict) else entry.cond


@contextlib.contextmanager
def unmarked(p, module) -> Iterator[None]:
    """Run `module`, a UNet the extension's hook is not on (W2SD's weak checkpoint), on conds the
    hook marked: its forward gets the context with the mark token taken off (hook.py:81-111)."""
    hook = _hook(p)
    unmark = getattr(sys.modules.get(type(hook).__module__), "unmark_prompt_context", None) if hook else None
    if unmark is None:
        yield
        return
    missing = object()
    own, forward = module.__dict__.get("forward", missing), module.forward

    def plain(x, timesteps=None, context=None, **kwargs):
        return forward(x, timesteps=timesteps, context=unmark(context)[3], **kwargs)

    module.forward = plain
    try:
        yield
    finally:
        if own is missing:
            del module.forward
        else:
            module.forward = own
