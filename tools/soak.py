#!/usr/bin/env python3
"""Soak and fault test of W2SD against a running WebUI (AUTOMATIC1111 1.10 or Forge) on this machine.

    python3 tools/soak.py http://127.0.0.1:7860 [--requests 300] [--clients 3] [--minutes 60] [--seed 0]
                          [--out soak-out] [--pid PID] [--steps 2]

Standard library only (no WebUI, no lib_w2sd imports), so any Python 3.10+ runs it. It refuses any
host that does not resolve to loopback addresses only, and stops by itself at --requests planned
requests or --minutes, whichever comes first (then it still runs the closing reference and
restores the options it changed).

What it sends (a plan fixed by --seed and what the server lists, see build_plan): plain and W2SD
generations of every weak kind and preset (CFG, prompt, negative prompt, LoRA, weak checkpoint,
ControlNet when the server lists a ControlNet model, combinations, the positional list), as
txt2img, img2img, inpainting and hires fix, with batch size and batch count above 1; bad W2SD
fields and malformed args lists; deterministic requests repeated at random points; PNG-info round
trips; and, alone on the server (no other client sending), a fixed plain reference at the start,
the middle and the end, /sdapi/v1/interrupt and /skip at random moments of a generation,
switches of the loaded checkpoint (random_sd15_a <-> random_sd15_b) and of w2sd_checkpoint_memory.

It writes one JSON line per HTTP request to --out/requests.jsonl (status, seconds, image hashes)
and --out/summary.json, prints the checks (see verdicts) and exits 0 when all pass, 1 otherwise,
2 when it refused to start.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import ipaddress
import json
import os
import queue
import random
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from typing import Any, Callable, Dict, List, Optional

PROMPT = "a photo of a cat"
REFINED = "a photo of a cat, detailed fur, sharp focus, golden hour"
NEGATIVE = "blurry"
LORA = "<lora:random_lora_sd15:0.8>"
MODELS = ("random_sd15_a", "random_sd15_b")
MEMORY_OPTION = "w2sd_checkpoint_memory"
MEMORY_POLICIES = ("offload", "unload", "gpu")
STATE_ROUTE = "/w2sd/v1/state"
RSS_GROWTH_LIMIT = 0.05
PRESETS = {"Z": "Z-Sampling (CFG gap)", "paper": "Paper defaults (LoRA +1.5/-1.5, CFG 5.5/1.0)",
           "ckpt": "Checkpoint pair", "prompt": "Prompt refinement"}
# W2SD's infotext keys -> API field names (README "Infotext"), to rebuild a request from PNG info.
INFOTEXT_FIELDS = {
    "W2SD preset": "preset", "W2SD weak CFG": "weak_cfg", "W2SD strong CFG": "strong_cfg",
    "W2SD weak prompt": "weak_prompt", "W2SD weak negative prompt": "weak_negative_prompt",
    "W2SD weak LoRA": "weak_lora_multiplier", "W2SD strong LoRA": "strong_lora_multiplier",
    "W2SD weak checkpoint": "weak_checkpoint", "W2SD weak ControlNet": "weak_controlnet_weight",
    "W2SD strong ControlNet": "strong_controlnet_weight", "W2SD steps": "reflect_steps",
    "W2SD steps unit": "reflect_unit", "W2SD strength": "strength", "W2SD weak sigma": "weak_sigma",
    "W2SD reflections": "reflections", "W2SD hires steps": "hires_reflect_steps",
}
TEXT_FIELDS = ("preset", "weak_prompt", "weak_negative_prompt", "weak_checkpoint", "reflect_unit", "weak_sigma")


class Refused(Exception):
    """The soak will not run against this target."""


# -- target ---------------------------------------------------------------------------------------
def loopback_url(url: str) -> str:
    """`url` with its host replaced by the loopback address it resolves to; Refused unless every
    address the host resolves to is loopback (127.0.0.0/8, ::1)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise Refused(f"{url!r}: give an http:// URL with a host, e.g. http://127.0.0.1:7860")
    try:
        port = parts.port or 80
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as error:
        raise Refused(f"{parts.hostname!r} does not resolve: {error}") from None
    addresses = sorted({info[4][0] for info in infos})
    foreign = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback]
    if not addresses or foreign:
        raise Refused(f"{parts.hostname!r} resolves to {', '.join(foreign or addresses) or 'nothing'}: "
                      "the soak only targets loopback addresses (127.0.0.0/8, ::1, localhost)")
    address = addresses[0]
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}"


class Server:
    """JSON over HTTP to one WebUI; every request is recorded."""

    def __init__(self, base: str, log: Callable[[dict], None]):
        self.base, self.log = base, log

    def call(self, method: str, path: str, payload: Any = None, timeout: float = 1800, log: bool = True,
             **record) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        start = time.time()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        except (OSError, urllib.error.URLError) as error:
            status, body = None, repr(error).encode()
        seconds = time.time() - start
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = body.decode(errors="replace")[:2000]
        entry = dict(record, method=method, path=path, status=status, seconds=round(seconds, 3), t=round(start, 3))
        if isinstance(decoded, dict) and isinstance(decoded.get("images"), list):
            entry["images"] = [image_hash(b) for b in decoded["images"] if isinstance(b, str)]
        if status is None or status >= 400:
            entry["body"] = decoded if isinstance(decoded, (dict, str)) else str(decoded)[:2000]
        if log:
            self.log(entry)
        return {"status": status, "json": decoded, "seconds": seconds, "record": entry}


# -- PNG (stdlib) ---------------------------------------------------------------------------------
def png_chunks(data: bytes):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length


def image_hash(b64: str) -> str:
    """A hash of the image's pixels (header and decompressed image data, not its text chunks:
    the infotext is not part of the picture)."""
    try:
        data = base64.b64decode(b64.split(",", 1)[1] if b64.startswith("data:") else b64)
        chunks = list(png_chunks(data))
        pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
        header = next(body for kind, body in chunks if kind == b"IHDR")
        return hashlib.sha256(header + pixels).hexdigest()[:16]
    except Exception:  # noqa: BLE001  (not a PNG: hash the bytes)
        return "raw:" + hashlib.sha256(b64.encode()).hexdigest()[:16]


def png(width: int, height: int, pixel: Callable[[int, int], tuple]) -> str:
    """A base64 RGB PNG with pixel(x, y) -> (r, g, b)."""
    rows = b"".join(b"\0" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return base64.b64encode(data).decode()


INIT_IMAGE = png(64, 64, lambda x, y: ((x * 4) % 256, (y * 4) % 256, ((x + y) * 2) % 256))
MASK = png(64, 64, lambda x, y: (255, 255, 255) if 16 <= x < 48 and 16 <= y < 48 else (0, 0, 0))
CONTROL = png(64, 64, lambda x, y: (255, 255, 255) if (x // 8 + y // 8) % 2 else (0, 0, 0))


# -- the request mix ------------------------------------------------------------------------------
def w2sd_variants(facts: dict, weak_model: str) -> Dict[str, dict]:
    """name -> {"args": W2SD args, "prompt"/"negative": overrides, "controlnet": True}."""
    v = {
        "cfg": {"args": [{"enabled": True, "weak_cfg": 1.0}]},
        "preset-Z": {"args": [{"enabled": True, "preset": PRESETS["Z"]}]},
        "prompt": {"args": [{"enabled": True, "weak_prompt": PROMPT}], "prompt": REFINED},
        "preset-prompt": {"args": [{"enabled": True, "preset": PRESETS["prompt"], "weak_prompt": PROMPT}],
                          "prompt": REFINED},
        "negative": {"args": [{"enabled": True, "weak_negative_prompt": "blurry, ugly, low quality"}]},
        "lora": {"args": [{"enabled": True, "weak_lora_multiplier": 0}], "prompt": f"{PROMPT} {LORA}"},
        "preset-paper": {"args": [{"enabled": True, "preset": PRESETS["paper"]}], "prompt": f"{PROMPT} {LORA}"},
        "checkpoint": {"args": [{"enabled": True, "weak_checkpoint": weak_model}]},
        "preset-ckpt": {"args": [{"enabled": True, "preset": PRESETS["ckpt"], "weak_checkpoint": weak_model}]},
        "cfg+prompt+lora": {"args": [{"enabled": True, "weak_cfg": 1.0, "weak_prompt": PROMPT,
                                      "weak_lora_multiplier": 0.2}], "prompt": f"{REFINED} {LORA}"},
        "cfg+checkpoint": {"args": [{"enabled": True, "weak_cfg": 2.0, "weak_checkpoint": weak_model,
                                     "reflect_steps": 1.0}]},
        "lora+checkpoint": {"args": [{"enabled": True, "weak_lora_multiplier": -1, "strong_lora_multiplier": 1.2,
                                      "weak_checkpoint": weak_model}], "prompt": f"{PROMPT} {LORA}"},
        "positional": {"args": [True, "Custom", ["CFG", "Prompt"], 1.0, 0, PROMPT], "prompt": REFINED},
        "advanced": {"args": [{"enabled": True, "weak_cfg": 3.0, "strong_cfg": 6.0, "reflections": 2,
                               "weak_sigma": "next", "strength": 0.6, "reflect_steps": 1, "reflect_unit": "steps"}]},
        "disabled": {"args": [{"enabled": False, "weak_cfg": 1.0}]},
    }
    if facts.get("controlnet"):
        v["controlnet"] = {"args": [{"enabled": True, "weak_controlnet_weight": 0}], "controlnet": True}
        v["cfg+controlnet"] = {"args": [{"enabled": True, "weak_cfg": 1.0, "weak_controlnet_weight": 0.5,
                                         "strong_controlnet_weight": 1.2}], "controlnet": True}
    return v


MODES = ("txt2img", "img2img", "inpaint", "hires")
# (args, the field the 422 must name): bad fields and malformed args lists.
BAD_ARGS = [
    ([{"enabled": True, "weak_cfg": "high"}], "weak_cfg"),
    ([{"enabled": True, "weak_sigma": "later"}], "weak_sigma"),
    ([{"enabled": True, "preset": "Z"}], "preset"),
    ([{"enabled": True, "wek_cfg": 1}], "wek_cfg"),
    ([{"enabled": True, "weak_checkpoint": "no_such_model.safetensors"}], "weak_checkpoint"),
    ([{"enabled": True, "weak_cfg": 1.0, "strength": 7}], "strength"),
    ([{"enabled": True, "weak_cfg": 1.0, "reflections": 9}], "reflections"),
    ([{"enabled": True, "weak_cfg": 1.0, "reflect_steps": 5, "reflect_unit": "fraction"}], "reflect_steps"),
    ([{"enabled": "maybe"}], "enabled"),
    ({"enabled": True, "weak_cfg": 1.0}, "args"),
    ([{"enabled": True, "weak_cfg": 1.0}, {"weak_cfg": "x"}], "args"),
    ([True, "Custom", "CFG"], "weak_kinds"),
    ([True, "Custom", ["Nope"]], "weak_kinds"),
    ([True, "Custom", ["CFG"], "x"], "weak_cfg"),
    ([True, 5], "preset"),
    (["yes"], "enabled"),
    ([True, "Custom", ["CFG"], 1.0, 0, "", "", 0, 0, "", 3.0, "fraction"], "reflect_steps"),
    ([True, "Custom", ["CFG"], 1.0] + [0] * 20, "args"),
]


def generation(mode: str, variant: Optional[str], seed: int, batch_size: int = 1, n_iter: int = 1,
               steps: int = 2) -> dict:
    return {"op": "generate", "mode": mode, "variant": variant, "seed": seed, "batch_size": batch_size,
            "n_iter": n_iter, "steps": steps}


def build_plan(seed: int, requests: int, facts: dict) -> List[dict]:
    """The whole run as a list of steps: {"parallel": [specs]} (sent by all clients) or
    {"serial": spec} (alone on the server). Deterministic for (seed, requests, facts); at most
    `requests` HTTP requests in all (see http_requests), the closing steps included."""
    rng = random.Random(seed)
    requests -= 8  # the closing steps: middle and end references, end state, options put back and compared (2), alive
    steps = facts.get("steps", 2)
    variants = sorted(w2sd_variants(facts, MODELS[1]))
    plan: List[dict] = []
    count = [0]

    def add(kind: str, spec: Any) -> bool:
        cost = sum(http_requests(s) for s in (spec if isinstance(spec, list) else [spec]))
        if count[0] + cost > requests:
            return False
        count[0] += cost
        plan.append({kind: spec})
        return True

    def serial_action(action: str) -> None:
        """One action alone on the server: an interrupt or skip at a random moment, a primed repeat,
        a change of the memory policy, or a switch a -> b (two generations) -> a."""
        if action in ("interrupt", "skip"):
            add("serial", {"op": action, "delay": round(rng.uniform(0.05, 0.9), 3), "steps": max(steps, 3),
                           "variant": rng.choice((None, "cfg", "lora", "checkpoint")), "n_iter": rng.choice((1, 2)),
                           "seed": rng.randrange(10**6)})
        elif action == "primed":
            add("serial", dict(rng.choice([x for x in repeats if x["op"] == "primed"])))
        elif action == "memory":
            add("serial", {"op": "memory", "policy": rng.choice(MEMORY_POLICIES)})
        else:
            add("serial", {"op": "switch", "model": MODELS[1]})
            add("parallel", [generation("txt2img", rng.choice(("checkpoint", "cfg", None)), rng.randrange(10**6),
                                        steps=steps) for _ in range(2)])
            add("serial", {"op": "switch", "model": MODELS[0]})

    # Deterministic requests, repeated at random points (same seed and settings: the same image).
    repeats = [generation("txt2img", "cfg+prompt+lora", 101, steps=steps),
               generation("img2img", "cfg+checkpoint", 102, steps=steps),
               generation("txt2img", "preset-paper", 103, batch_size=2, steps=steps),
               generation("inpaint", "advanced", 104, steps=steps),
               generation("txt2img", None, 105, steps=steps)]
    if facts.get("controlnet"):
        repeats.append(generation("txt2img", "cfg+controlnet", 106, steps=steps))
    repeats += [generation("img2img", None, 107, steps=steps), generation("inpaint", None, 108, steps=steps)]
    for i, spec in enumerate(repeats):
        spec["repeat"] = f"R{i}"
        if spec["mode"] in ("img2img", "inpaint"):
            # Both WebUIs encode the init image (VAE posterior sample) from the GLOBAL torch RNG as the
            # previous request left it (processing.py p.init runs before p.rng reseeds it): such a
            # repeat runs alone, right after a fixed plain txt2img that sets that state.
            spec["op"] = "primed"

    reference = {"op": "reference", "seed": 1234, "steps": steps}
    add("serial", dict(reference, at="start"))
    add("serial", {"op": "state", "at": "start"})
    # Warm-up: every mode and variant once, every repeat once, a switch a -> b -> a.
    warm = [generation(mode, None, rng.randrange(10**6), steps=steps) for mode in MODES]
    warm += [generation(rng.choice(MODES), v, rng.randrange(10**6), steps=steps) for v in variants]
    warm += [dict(r) for r in repeats if r["op"] != "primed"]
    rng.shuffle(warm)
    add("parallel", warm)
    for r in repeats:
        if r["op"] == "primed":
            add("serial", dict(r))
    add("serial", {"op": "switch", "model": MODELS[1]})
    add("parallel", [generation("txt2img", "checkpoint", 7, steps=steps), generation("txt2img", None, 8, steps=steps)])
    add("serial", {"op": "switch", "model": MODELS[0]})
    # ... and each memory policy (a weak-checkpoint generation under it), an interrupt and a skip: the
    # allocator's high-water marks of every kind of step are reached before RSS is measured.
    for policy in MEMORY_POLICIES[1:] + MEMORY_POLICIES[:1]:
        add("serial", {"op": "memory", "policy": policy})
        add("parallel", [generation("txt2img", "checkpoint", rng.randrange(10**6), steps=steps)])
    serial_action("interrupt")
    serial_action("skip")
    add("serial", {"op": "mark", "at": "warm"})

    middle_done = False
    serial_actions = ["interrupt", "skip", "memory", "switch", "primed", "interrupt", "skip", "primed", "interrupt",
                      "skip", "memory", "primed"]
    done_blocks = 0
    while True:
        block = []
        for _ in range(rng.randint(8, 14)):
            r = rng.random()
            if r < 0.22:
                args, field = rng.choice(BAD_ARGS)
                block.append({"op": "bad", "args": args, "field": field,
                              "endpoint": rng.choice(("txt2img", "img2img"))})
            elif r < 0.34:
                block.append(dict(rng.choice([x for x in repeats if x["op"] != "primed"])))
            elif r < 0.40:
                block.append({"op": "png-info", "variant": rng.choice(("cfg", "preset-paper", "advanced",
                                                                       "checkpoint", "positional")),
                              "seed": rng.randrange(10**6), "steps": steps})
            elif r < 0.44:
                block.append({"op": "get", "path": rng.choice(("/sdapi/v1/options", "/sdapi/v1/progress",
                                                               "/sdapi/v1/sd-models", STATE_ROUTE))})
            else:
                mode = rng.choice(MODES)
                variant = rng.choice(variants + [None, None])
                batch = rng.choice((1, 1, 1, 2)) if mode != "hires" else 1
                n_iter = rng.choice((1, 1, 1, 2))
                block.append(generation(mode, variant, rng.randrange(10**6), batch, n_iter, steps))
        if not add("parallel", block):
            while block and not add("parallel", block):  # what fits, keeping room for the closing steps
                block.pop()
            break
        if not middle_done and count[0] >= requests // 2:
            add("serial", dict(reference, at="middle"))
            middle_done = True
        done_blocks += 1
        # the first blocks are followed by one of each action, the later ones by a random one
        action = serial_actions[done_blocks - 1] if done_blocks <= len(serial_actions) else rng.choice(serial_actions)
        serial_action(action)
    if not middle_done:
        plan.append({"serial": dict(reference, at="middle")})
    plan.append({"serial": dict(reference, at="end")})
    plan.append({"serial": {"op": "state", "at": "end"}})
    return plan


def http_requests(spec: dict) -> int:
    """How many HTTP requests a spec sends: a PNG-info round trip three (the image, png-info, the
    reproduction), an interrupt or skip two (the generation and the interrupt), a primed repeat two, the others one."""
    return {"png-info": 3, "interrupt": 2, "skip": 2, "primed": 2, "mark": 0}.get(spec["op"], 1)


def is_closing(step: dict) -> bool:
    return step.get("serial", {}).get("at") == "end"


def plan_specs(plan: List[dict]) -> List[dict]:
    return [s for step in plan for s in (step.get("parallel") or [step["serial"]])]


# -- running it -----------------------------------------------------------------------------------
class Soak:
    def __init__(self, server: Server, facts: dict, out: str, pid: Optional[int]):
        self.server, self.facts, self.out, self.pid = server, facts, out, pid
        self.loaded = MODELS[0]
        self.marks: Dict[str, Any] = {"rss": {}, "interrupts": [], "options": {}, "state": {}}
        self.lock = threading.Lock()
        self.rss_samples: List[tuple] = []
        self.durations: List[float] = []

    # payloads
    def payload(self, spec: dict) -> tuple:
        mode, variant = spec.get("mode", "txt2img"), spec.get("variant")
        body = {"prompt": PROMPT, "negative_prompt": NEGATIVE, "seed": spec["seed"], "steps": spec["steps"],
                "width": 64, "height": 64, "cfg_scale": 7.0, "sampler_name": "Euler",
                "batch_size": spec.get("batch_size", 1), "n_iter": spec.get("n_iter", 1),
                "save_images": False, "send_images": True, "do_not_save_samples": True, "do_not_save_grid": True}
        scripts = {}
        if variant:
            other = MODELS[1] if self.loaded == MODELS[0] else MODELS[0]
            v = w2sd_variants(self.facts, f"{other}.safetensors")[variant]
            body["prompt"] = v.get("prompt", PROMPT)
            scripts["w2sd"] = {"args": v["args"]}
            if v.get("controlnet"):
                scripts["controlnet"] = {"args": [{
                    "enabled": True, "module": "None" if self.facts["forge"] else "none",
                    "model": self.facts["controlnet"], "image": CONTROL, "weight": 1.0,
                    "resize_mode": "Crop and Resize", "control_mode": "Balanced", "pixel_perfect": False}]}
            if mode == "hires" and isinstance(v["args"][0], dict) and v["args"][0].get("enabled"):
                scripts["w2sd"] = {"args": [dict(v["args"][0], hires=True, hires_reflect_steps=1.0)]}
        if scripts:
            body["alwayson_scripts"] = scripts
        endpoint = "txt2img"
        if mode == "hires":
            body.update(enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", hr_second_pass_steps=1,
                        denoising_strength=0.6)
            if self.facts["forge"]:
                body["hr_additional_modules"] = ["Use same choices"]  # Forge answers 500 without it (its bug)
        elif mode in ("img2img", "inpaint"):
            endpoint = "img2img"
            body.update(init_images=[INIT_IMAGE], denoising_strength=0.6)
            if mode == "inpaint":
                body.update(mask=MASK, mask_blur=0, inpainting_fill=1, inpaint_full_res=False)
        return endpoint, body

    def record_kind(self, spec: dict) -> str:
        return f"{spec.get('mode', 'txt2img')}/{spec.get('variant') or 'plain'}"

    def generate(self, spec: dict, **record) -> dict:
        endpoint, body = self.payload(spec)
        if spec.get("repeat"):
            record.setdefault("group", f"{spec['repeat']}@{self.loaded}")
        result = self.server.call("POST", f"/sdapi/v1/{endpoint}", body, kind=self.record_kind(spec),
                                  op=spec["op"], expect=200, loaded=self.loaded, **record)
        if result["status"] == 200:
            self.durations.append(result["seconds"])
        return result

    def run_spec(self, spec: dict, client: int) -> None:
        """One spec; a fault of the soak itself (an answer it cannot read) is recorded as a failure."""
        try:
            self._run_spec(spec, client)
        except Exception as error:  # noqa: BLE001
            self.server.log({"kind": f"{spec['op']}/soak error", "op": "soak-error", "expect": 200, "status": None,
                             "body": repr(error)[:500], "seconds": 0.0, "client": client, "t": round(time.time(), 3)})

    def _run_spec(self, spec: dict, client: int) -> None:
        op = spec["op"]
        if op in ("generate", "reference"):
            if op == "reference":
                spec = dict(generation("txt2img", None, spec["seed"], steps=spec["steps"]), at=spec["at"],
                            op="reference")
            self.generate(spec, client=client, at=spec.get("at"),
                          **({"group": f"reference@{self.loaded}"} if op == "reference" else {}))
        elif op == "primed":
            self.generate(generation("txt2img", None, 109, steps=spec["steps"]), client=client,
                          group=f"primer@{self.loaded}")
            self.generate(dict(spec, op="generate"), client=client)
        elif op == "bad":
            mode = "img2img" if spec["endpoint"] == "img2img" else "txt2img"
            endpoint, body = self.payload(generation(mode, None, 1, steps=1))
            body["alwayson_scripts"] = {"w2sd": {"args": spec["args"]}}
            self.server.call("POST", f"/sdapi/v1/{endpoint}", body, kind="bad/" + spec["field"], op="bad",
                             expect="4xx", field=spec["field"], client=client)
        elif op == "get":
            self.server.call("GET", spec["path"], kind="get" + spec["path"], op="get",
                             expect=200 if spec["path"] != STATE_ROUTE or self.facts["state_route"] else None,
                             client=client)
        elif op == "png-info":
            self.png_round_trip(spec, client)
        elif op == "state":
            result = self.server.call("GET", STATE_ROUTE, kind="state", op="state", client=client,
                                      expect=200 if self.facts["state_route"] else None)
            self.marks["state"][spec["at"]] = result["json"] if result["status"] == 200 else None
        elif op == "mark":
            self.mark(spec["at"])
        elif op == "switch":
            self.switch(spec["model"], client)
        elif op == "memory":
            if self.facts["memory_option"]:
                self.set_option(MEMORY_OPTION, spec["policy"], client)
        elif op in ("interrupt", "skip"):
            self.interrupt(spec, client)

    def set_option(self, key: str, value: Any, client: int) -> None:
        self.marks["options"].setdefault(key, self.facts["options"].get(key))
        self.server.call("POST", "/sdapi/v1/options", {key: value}, kind=f"options/{key}", op="options",
                         expect=200, client=client, value=value)

    def switch(self, model: str, client: int) -> None:
        self.set_option("sd_model_checkpoint", f"{model}.safetensors", client)
        self.loaded = model

    def png_round_trip(self, spec: dict, client: int) -> None:
        source = self.generate(generation("txt2img", spec["variant"], spec["seed"], steps=spec["steps"]),
                               client=client)
        if source["status"] != 200:
            return
        image = source["json"]["images"][0]
        info = self.server.call("POST", "/sdapi/v1/png-info", {"image": image}, kind="png-info", op="png-info",
                                expect=200, client=client, source=source["record"]["images"][0])
        if info["status"] != 200:
            return
        text = (info["json"] or {}).get("info") or ""
        params = (info["json"] or {}).get("parameters") or {}
        has_keys = "W2SD:" in text and "W2SD steps:" in text and "W2SD strength:" in text
        info["record"]["w2sd_keys"] = has_keys
        if self.facts["forge"]:  # Forge answers 500 to any "infotext" request (its own bug): rebuild the fields
            payload = rebuild_request(params)
            kind = "png-info/rebuilt"
        else:
            payload = {"infotext": text, "save_images": False, "send_images": True}
            kind = "png-info/infotext"
        self.server.call("POST", "/sdapi/v1/txt2img", payload, kind=kind, op="round-trip", expect=200,
                         client=client, same_as=source["record"]["images"][0], loaded=self.loaded)

    def interrupt(self, spec: dict, client: int) -> None:
        gen = generation("txt2img", spec["variant"], spec["seed"], n_iter=spec["n_iter"], steps=spec["steps"])
        done: Dict[str, Any] = {}
        worker = threading.Thread(target=lambda: done.update(self.generate(gen, client=client, interrupted=spec["op"])))
        worker.start()
        self.wait_for_sampling(worker)
        time.sleep(spec["delay"] * self.step_seconds())  # a random moment of the sampling
        sent = time.time()
        self.server.call("POST", f"/sdapi/v1/{spec['op']}", None, kind=spec["op"], op=spec["op"], expect=200,
                         client=client)
        worker.join()
        served = round(time.time() - sent, 3)
        record = done.get("record", {})
        self.marks["interrupts"].append({"op": spec["op"], "variant": spec["variant"], "served_s": served,
                                         "n_iter": spec["n_iter"], "status": record.get("status"),
                                         "ended_before": record.get("t", 0) + record.get("seconds", 0) < sent})

    def wait_for_sampling(self, worker: threading.Thread, timeout: float = 300) -> None:
        """Until the generation's sampling started (GET /sdapi/v1/progress, not recorded)."""
        end = time.time() + timeout
        while worker.is_alive() and time.time() < end:
            answer = self.server.call("GET", "/sdapi/v1/progress?skip_current_image=true", timeout=30, log=False)
            state = (answer["json"] or {}).get("state", {}) if isinstance(answer["json"], dict) else {}
            if state.get("sampling_step", 0) >= 1 or (answer["json"] or {}).get("progress", 0) > 0:
                return
            time.sleep(0.1)

    def step_seconds(self) -> float:
        """A sampling step's typical time: a median generation's over its steps (at least 0.5 s)."""
        typical = sorted(self.durations)[len(self.durations) // 2] if self.durations else 10.0
        return max(0.5, typical / (self.facts.get("steps", 2) + 1))

    def mark(self, at: str) -> None:
        self.marks["rss"][at] = rss_bytes(self.pid)
        self.marks.setdefault("rss_anon", {})[at] = rss_bytes(self.pid, "RssAnon")
        if at == "warm":
            self.marks["warm_t"] = time.time()

    # the whole run
    def run(self, plan: List[dict], clients: int, deadline: float) -> None:
        sampler = threading.Thread(target=self.sample_rss, args=(deadline + 3600,), daemon=True)
        sampler.start()
        closing = [step for step in plan if is_closing(step)]
        done = set()
        self.marks["stopped_by"] = "requests"
        for i, step in enumerate(plan):
            if is_closing(step):
                continue
            if time.time() > deadline:
                self.marks["stopped_by"] = "time"
                break
            if "serial" in step:
                self.run_spec(step["serial"], 0)
            else:
                self.run_parallel(step["parallel"], clients, deadline)
            done.add(i)
        if self.loaded != MODELS[0]:
            self.switch(MODELS[0], 0)
        for i, step in enumerate(plan):  # a run stopped by time still gets its middle reference
            if i not in done and step.get("serial", {}).get("op") == "reference" and not is_closing(step):
                self.run_spec(step["serial"], 0)
        for step in closing:  # the end reference, then the options put back, then the end state
            if step["serial"]["op"] != "state":
                self.run_spec(step["serial"], 0)
        self.restore_options()
        for step in closing:
            if step["serial"]["op"] == "state":
                self.run_spec(step["serial"], 0)
        self.marks["alive"] = self.server.call("GET", "/sdapi/v1/options", kind="alive", op="get",
                                               expect=200)["status"] == 200
        self.mark("end")
        self.rss_done = True

    def run_parallel(self, specs: List[dict], clients: int, deadline: float) -> None:
        work: queue.Queue[dict] = queue.Queue()
        for spec in specs:
            work.put(spec)

        def client(index):
            while time.time() <= deadline:
                try:
                    spec = work.get_nowait()
                except queue.Empty:
                    return
                self.run_spec(spec, index)

        threads = [threading.Thread(target=client, args=(i + 1,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def restore_options(self) -> None:
        changed = {k: v for k, v in self.marks["options"].items()}
        if changed:
            self.server.call("POST", "/sdapi/v1/options", changed, kind="options/restore", op="options", expect=200)
        now = self.server.call("GET", "/sdapi/v1/options", kind="options/compare", op="get", expect=200)["json"]
        state = self.server.call("GET", STATE_ROUTE, kind="options/compare", op="get")["json"]
        self.marks["options_diff"] = options_diff(self.facts["options"], dict(w2sd_settings(state), **(now or {})))

    def sample_rss(self, until: float) -> None:
        while time.time() < until and not getattr(self, "rss_done", False):
            value = rss_bytes(self.pid)
            if value:
                self.rss_samples.append((round(time.time(), 1), value))
            time.sleep(2)


def checkpoint_name(value: Any) -> Any:
    """"random_sd15_a", "random_sd15_a.safetensors" and "random_sd15_a.safetensors [97a90d0218]"
    name the same checkpoint (Forge stores the file name for a name it was given)."""
    if not isinstance(value, str):
        return value
    value = value.split(" [")[0]
    return value[: -len(".safetensors")] if value.endswith(".safetensors") else value


def w2sd_settings(state: Any) -> dict:
    """W2SD's settings from a GET /w2sd/v1/state answer ({} without one): A1111's GET
    /sdapi/v1/options leaves extensions' settings out (POST sets them), the state route shows them."""
    return (state.get("settings") or {}) if isinstance(state, dict) else {}


def options_diff(start: dict, end: dict) -> dict:
    """Options that differ, as [start, end]. The checkpoint counts by the checkpoint it names, and
    sd_checkpoint_hash is the WebUI's record of the last loaded one (written at each load), not a setting."""
    diff = {}
    for key in sorted(set(start) | set(end)):
        a, b = start.get(key), end.get(key)
        if key == "sd_model_checkpoint":
            a, b = checkpoint_name(a), checkpoint_name(b)
        if key != "sd_checkpoint_hash" and a != b:
            diff[key] = [start.get(key), end.get(key)]
    return diff


def rebuild_request(params: dict) -> dict:
    """A txt2img request with the settings PNG info parsed from an image (W2SD's from its keys)."""
    width, height = int(params.get("Size-1", 64)), int(params.get("Size-2", 64))
    body = {"prompt": params.get("Prompt", ""), "negative_prompt": params.get("Negative prompt", ""),
            "seed": int(float(params["Seed"])), "steps": int(float(params["Steps"])), "width": width,
            "height": height, "cfg_scale": float(params["CFG scale"]), "sampler_name": params["Sampler"],
            "save_images": False, "send_images": True}
    if "Schedule type" in params:
        body["scheduler"] = params["Schedule type"]
    if "W2SD" in params:
        w2sd: Dict[str, Any] = {"enabled": True}
        for key, field in INFOTEXT_FIELDS.items():
            if key in params:
                value = params[key]
                w2sd[field] = str(value) if field in TEXT_FIELDS else float(value)
        if "reflections" in w2sd:
            w2sd["reflections"] = int(w2sd["reflections"])
        if "hires_reflect_steps" in w2sd:
            w2sd["hires"] = True
        body["alwayson_scripts"] = {"w2sd": {"args": [w2sd]}}
    return body


# -- the server's process -------------------------------------------------------------------------
def listening_pid(port: int) -> Optional[int]:
    """The pid of the process listening on `port` (/proc/net/tcp{,6} inode -> /proc/*/fd)."""
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    targets = {f"socket:[{i}]" for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    return int(pid)
        except OSError:
            continue
    return None


def rss_bytes(pid: Optional[int], field: str = "VmRSS") -> Optional[int]:
    """The process's resident memory (VmRSS; RssAnon: without mmapped file pages), in bytes."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# -- the checks -----------------------------------------------------------------------------------
def verdicts(records: List[dict], marks: dict) -> List[tuple]:
    """(check, passed, detail) for a finished run: pure, from the records and marks only."""
    out = []
    bad = [r for r in records if r.get("expect") == "4xx"]
    wrong = [r for r in bad if not (isinstance(r.get("status"), int) and 400 <= r["status"] < 500
                                    and isinstance(r.get("body"), dict) and r["body"].get("field") == r.get("field")
                                    and r["field"] in str(r["body"].get("detail", "")))]
    out.append(("bad requests: a 4xx naming the field", bool(bad) and not wrong,
                f"{len(bad) - len(wrong)}/{len(bad)}" + _examples(wrong)))
    good = [r for r in records if r.get("expect") == 200]
    failed = [r for r in good if r.get("status") != 200 or (r.get("op") in ("generate", "reference", "round-trip")
                                                            and not r.get("images"))]
    out.append(("other requests: 200 (with images for generations)", bool(good) and not failed,
                f"{len(good) - len(failed)}/{len(good)}" + _examples(failed)))
    out.append(("server alive at the end", bool(marks.get("alive")), ""))
    refs = [r for r in records if r.get("op") == "reference"]
    ref_hashes = {tuple(r.get("images") or ()) for r in refs}
    out.append(("plain reference bit-identical at start, middle, end",
                len(refs) >= 3 and len(ref_hashes) == 1 and () not in ref_hashes,
                f"{len(refs)} runs, {len(ref_hashes)} distinct"))
    groups: Dict[str, set] = {}
    for r in records:
        if r.get("group") and r.get("status") == 200 and not r.get("interrupted"):
            groups.setdefault(r["group"], set()).add(tuple(r.get("images") or ()))
    split = {g: len(h) for g, h in groups.items() if len(h) > 1}
    counts = {g: sum(1 for r in records if r.get("group") == g) for g in groups}
    out.append(("repeated requests identical across the run", bool(groups) and not split,
                ", ".join(f"{g} x{counts[g]}" for g in sorted(groups)) + (f"; differ: {split}" if split else "")))
    trips = [r for r in records if r.get("op") == "round-trip"]
    lost = [r for r in trips if r.get("status") != 200 or (r.get("images") or [None])[0] != r.get("same_as")]
    keys = [r for r in records if r.get("op") == "png-info"]
    out.append(("PNG info has the W2SD keys and reproduces the image",
                bool(trips) and not lost and all(r.get("w2sd_keys") for r in keys),
                f"{len(trips) - len(lost)}/{len(trips)} reproduced, {sum(bool(r.get('w2sd_keys')) for r in keys)}/"
                f"{len(keys)} with keys" + _examples(lost)))
    rss = marks.get("rss", {})
    warm, end = rss.get("warm"), rss.get("end")
    if warm and end:
        growth = (end - warm) / warm
        out.append(("server RSS after warm-up grows < 5%", growth < RSS_GROWTH_LIMIT,
                    f"start {_gb(rss.get('start'))}, warm {_gb(warm)}, end {_gb(end)} ({growth:+.1%})"))
    else:
        out.append(("server RSS after warm-up grows < 5%", False, "no RSS (server pid unknown: pass --pid)"))
    diff = marks.get("options_diff")
    out.append(("options unchanged at the end", diff == {}, json.dumps(diff)[:500] if diff else ""))
    state = marks.get("state", {})
    before, after = (state.get("start") or {}).get("patches"), (state.get("end") or {}).get("patches")
    changed = sorted(k for k in set(before or {}) | set(after or {}) if (before or {}).get(k) != (after or {}).get(k))
    out.append(("W2SD's patch points unchanged at the end (/w2sd/v1/state)", before is not None and not changed,
                "route missing" if before is None else (", ".join(changed) or f"{len(before)} items")))
    interrupts = marks.get("interrupts", [])
    out.append(("interrupts and skips served", bool(interrupts),
                ", ".join(f"{i['op']} {i['served_s']}s" for i in interrupts)))
    return out


def _examples(records: List[dict]) -> str:
    return "".join(f"\n      #{r.get('n')} {r.get('kind')} -> {r.get('status')} {str(r.get('body'))[:200]}"
                   for r in records[:5])


def _gb(value) -> str:
    return f"{value / 2**30:.2f} GiB" if value else "?"


def figures(records: List[dict], marks: dict, rss_samples: List[tuple]) -> dict:
    failures: Dict[str, int] = {}
    for r in records:
        ok = (r.get("status") == 200) if r.get("expect") == 200 else (
            isinstance(r.get("status"), int) and 400 <= r["status"] < 500) if r.get("expect") == "4xx" else True
        if not ok:
            failures[r.get("kind", "?")] = failures.get(r.get("kind", "?"), 0) + 1
    longest = max(records, key=lambda r: r.get("seconds", 0), default={})
    warm_t = marks.get("warm_t")
    peak = max((v for t, v in rss_samples if warm_t is None or t >= warm_t), default=None)
    return {"requests": len(records), "failures_by_kind": failures,
            "longest_s": longest.get("seconds"), "longest_kind": longest.get("kind"),
            "rss": dict(marks.get("rss", {})), "rss_anon": dict(marks.get("rss_anon", {})),
            "rss_peak_after_warmup": peak,
            "interrupts_served_s": [i["served_s"] for i in marks.get("interrupts", [])],
            "interrupts_mid_generation_served_s": [i["served_s"] for i in marks.get("interrupts", [])
                                                   if not i.get("ended_before")]}


# -- main -----------------------------------------------------------------------------------------
def discover(server: Server, steps: int) -> dict:
    options = server.call("GET", "/sdapi/v1/options", kind="discover", op="discover")["json"]
    if not isinstance(options, dict):
        raise Refused(f"{server.base} does not answer /sdapi/v1/options (a WebUI started with --api?)")
    models = server.call("GET", "/sdapi/v1/sd-models", kind="discover", op="discover")["json"] or []
    names = {m.get("model_name") for m in models if isinstance(m, dict)}
    missing = [m for m in MODELS if m not in names]
    if missing:
        raise Refused(f"the server lists no checkpoint {missing}: the soak needs {MODELS}")
    cn = server.call("GET", "/controlnet/model_list", kind="discover", op="discover")["json"]
    cn_models = [m for m in (cn or {}).get("model_list", []) if m and m != "None"] if isinstance(cn, dict) else []
    state = server.call("GET", STATE_ROUTE, kind="discover", op="discover")
    settings = w2sd_settings(state["json"])
    return {"options": dict(settings, **options), "forge": any("forge" in k.lower() for k in options),
            "controlnet": cn_models[0] if cn_models else None,
            "memory_option": MEMORY_OPTION in options or MEMORY_OPTION in settings,
            "state_route": state["status"] == 200, "steps": steps}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=3, choices=(2, 3, 4))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="soak-out")
    parser.add_argument("--pid", type=int, default=None, help="the server's pid (default: found from the port)")
    parser.add_argument("--steps", type=int, default=2, help="sampling steps of a generation (1-4: keep it cheap)")
    args = parser.parse_args(argv)
    try:
        base = loopback_url(args.base_url)
    except Refused as error:
        print(f"soak: refused: {error}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    records: List[dict] = []
    lock = threading.Lock()
    journal = open(os.path.join(args.out, "requests.jsonl"), "w")

    def log(entry):
        with lock:
            entry["n"] = len(records)
            records.append(entry)
            journal.write(json.dumps(entry) + "\n")
            journal.flush()
            if entry.get("op") not in ("discover",):
                print(f"[{entry['n']:4d}] c{entry.get('client', 0)} {entry.get('kind', '?'):34s} "
                      f"{entry.get('status')} {entry['seconds']:7.2f}s", flush=True)

    server = Server(base, log)
    try:
        facts = discover(server, args.steps)
    except Refused as error:
        print(f"soak: refused: {error}", file=sys.stderr)
        return 2
    pid = args.pid or listening_pid(urllib.parse.urlsplit(base).port or 80)
    plan = build_plan(args.seed, args.requests, facts)
    planned = sum(map(http_requests, plan_specs(plan))) + 3  # + options put back and compared, alive
    print(f"soak: {base} ({'Forge' if facts['forge'] else 'A1111'}), pid {pid}, {planned} planned "
          f"requests, {args.clients} clients, ControlNet {facts['controlnet']}, state route {facts['state_route']}",
          flush=True)
    soak = Soak(server, facts, args.out, pid)
    soak.mark("start")
    del records[:]  # the discovery requests are not part of the run
    soak.run(plan, args.clients, time.time() + args.minutes * 60)
    journal.close()
    results = verdicts(records, soak.marks)
    summary = {"base": base, "forge": facts["forge"], "clients": args.clients, "seed": args.seed,
               "figures": figures(records, soak.marks, soak.rss_samples), "marks": soak.marks,
               "rss_samples": soak.rss_samples,
               "checks": [{"check": c, "passed": p, "detail": d} for c, p, d in results]}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    print(json.dumps(summary["figures"], indent=1))
    for check, passed, detail in results:
        print(f"{'PASS' if passed else 'FAIL'}  {check}: {detail}")
    return 0 if all(p for _, p, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
