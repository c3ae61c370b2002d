"""GET /w2sd/v1/state on both WebUIs' stand-ins (test_state_a1111.py, test_state_forge.py): the
route exists, the fingerprint is the same after W2SD generations of every kind as before them,
and it does change while something is patched (during a W2SD call, or left patched by hand)."""

import gc
import weakref

import k_diffusion.sampling
import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient


def fingerprint():
    from lib_w2sd.webui import detect_backend

    return detect_backend().state()


def harness_checkpoint(webui, tmp_path, name="weak.safetensors", seed=5):
    """add_checkpoint for the Forge-family stand-ins, whose harness registers a checkpoint itself."""
    webui.add_checkpoint(name, seed=seed)
    return name


def patcher_weak_unet(cache_module: str):
    """weak_unet for the Forge-family stand-ins: the model under the cached weak UNet patcher of
    lib_w2sd.webui.adapters.<cache_module>."""

    def weak_unet():
        import importlib

        cache = importlib.import_module(f"lib_w2sd.webui.adapters.{cache_module}").cache
        return cache.entry and cache.entry.patcher.model

    return weak_unet


def state_tests(lora_prompt: str, add_checkpoint, weak_unet) -> dict:
    """The tests, for a stand-in's test module to take into its globals. `add_checkpoint(webui,
    tmp_path, name=, seed=)` registers a weak checkpoint and returns its name; `weak_unet()` is the
    cached weak UNet module (None: none)."""

    def test_the_route_answers_the_backends_fingerprint(webui):
        from lib_w2sd.webui.surface import api

        app = FastAPI()
        api.on_app_started(None, app)
        assert not api.add_state_route(app)  # once only
        response = TestClient(app).get("/w2sd/v1/state")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.pop("settings") == {"w2sd_default_preset": "Custom", "w2sd_checkpoint_memory": "offload",
                                        "w2sd_on_error": "fallback"}
        assert body == fingerprint()
        # W2SD's settings as generations read them (A1111's GET /sdapi/v1/options leaves them out)
        webui.settings(w2sd_checkpoint_memory="unload", w2sd_on_error="not a policy")
        got = TestClient(app).get("/w2sd/v1/state").json()["settings"]
        assert got["w2sd_checkpoint_memory"] == "unload" and got["w2sd_on_error"] == "fallback"
        assert {"sampler functions", "options", "unet weights", "unet hooks", "apply_model"} <= set(body["patches"])
        assert body["caches"]["weak unet"] == "empty"

    @pytest.mark.parametrize("kind", ["cfg", "prompt", "lora", "checkpoint", "joint"])
    def test_w2sd_generations_leave_the_fingerprint_as_it_was(webui, tmp_path, kind):
        webui.add_lora()
        name = add_checkpoint(webui, tmp_path)
        w2sd = {"cfg": {"weak_cfg": 1.0}, "prompt": {"weak_prompt": "a dog"}, "joint": {"weak_cfg": 3.0,
                "weak_prompt": "a cat"}, "lora": {"weak_lora_multiplier": -1.0},
                "checkpoint": {"weak_checkpoint": name}}[kind]
        webui.generate(None, prompt=lora_prompt)
        before = fingerprint()
        during = []
        webui.observers.append(lambda call, p: during.append(fingerprint()["patches"]) if call.role else None)
        result = webui.generate({"enabled": True, "reflect_steps": 0.5, **w2sd}, prompt=lora_prompt, steps=4)
        assert "W2SD warning" not in result.infotext
        after = fingerprint()
        assert after["patches"] == before["patches"]
        # while W2SD runs its calls, what it patches shows (the fingerprint can tell)
        assert any(d != before["patches"] for d in during)
        if kind == "checkpoint":
            assert after["caches"]["weak unet"] != "empty"

    def test_something_left_patched_changes_it(webui, monkeypatch):
        webui.generate(None)
        before = fingerprint()["patches"]

        def wrapper(*args, **kwargs):
            return original(*args, **kwargs)

        original = k_diffusion.sampling.sample_euler
        wrapper.w2sd_original = original
        monkeypatch.setattr(k_diffusion.sampling, "sample_euler", wrapper)
        changed = fingerprint()["patches"]
        assert changed["sampler functions"] != before["sampler functions"]
        monkeypatch.undo()
        assert fingerprint()["patches"] == before
        unet = next(iter((getattr(webui, "strong_unet", None) or webui.model.unet).parameters()))
        with torch.no_grad(), torch.inference_mode(unet.is_inference()):
            value = unet.view(-1)[0].clone()
            unet.view(-1)[0] += 1.0
            assert fingerprint()["patches"]["unet weights"] != before["unet weights"]
            unet.view(-1)[0] = value
        assert fingerprint()["patches"] == before
        root = getattr(webui, "strong_unet", None) or webui.model.unet
        root.forward = root.forward  # what sd-webui-controlnet's restore leaves: the same forward
        assert fingerprint()["patches"] == before
        root.forward = lambda *args, **kwargs: None  # a hook left on
        assert fingerprint()["patches"]["unet hooks"] != before["unet hooks"]
        del root.forward
        assert fingerprint()["patches"] == before
        webui.settings(sd_model_checkpoint="another name of it", sd_checkpoint_hash="0")  # the WebUI's bookkeeping
        assert fingerprint()["patches"]["options"] == before["options"]
        webui.settings(w2sd_left_over=True)
        assert fingerprint()["patches"]["options"] != before["options"]

    @pytest.mark.parametrize("policy", ["gpu", "offload", "unload"])
    def test_switching_weak_checkpoints_keeps_at_most_one_weak_unet(webui, tmp_path, policy):
        """A long-running server alternates weak checkpoints (the soak does): every weak UNet but the
        cached one is freed, and "unload" frees that one too."""
        names = [add_checkpoint(webui, tmp_path, f"weak{i}.safetensors", seed=5 + i) for i in range(2)]
        webui.settings(w2sd_checkpoint_memory=policy)
        made = []
        for name in names * 2:
            webui.observers.append(lambda call, p: made.append(weakref.ref(weak_unet())) if call.role else None)
            result = webui.generate({"enabled": True, "weak_checkpoint": name, "reflect_steps": 0.5}, steps=2)
            webui.observers.clear()
            assert "W2SD warning" not in result.infotext
        gc.collect()
        alive = {id(r()) for r in made if r() is not None}
        assert len(made) >= 4 and len(alive) == (0 if policy == "unload" else 1)
        assert (weak_unet() is None) == (policy == "unload")

    return {name: value for name, value in locals().items() if name.startswith("test_")}
