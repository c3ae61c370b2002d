"""GET /w2sd/v1/state on the Forge stand-in (tests/stubs_forge): see state_patterns.py."""

from state_patterns import state_tests

STAND_IN = "stubs_forge"


def add_checkpoint(webui, tmp_path, name="weak.safetensors", seed=5):
    webui.add_checkpoint(name, seed=seed)
    return name


def weak_unet():
    from lib_w2sd.webui.adapters import forge_unet

    return forge_unet.cache.entry and forge_unet.cache.entry.patcher.model


globals().update(state_tests("a red cat <lora:style:0.8>", add_checkpoint, weak_unet))


def test_the_route_answers_before_the_first_generation_loads_a_checkpoint(webui, monkeypatch):
    """Forge starts with a placeholder model and loads the checkpoint at the first generation: the
    route answered 500 (no forge_objects_original) on a freshly started real Forge."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from modules import sd_models, shared

    from lib_w2sd.webui.surface import api

    monkeypatch.setattr(shared, "sd_model", sd_models.FakeInitialModel())
    app = FastAPI()
    api.on_app_started(None, app)
    response = TestClient(app).get("/w2sd/v1/state")
    assert response.status_code == 200, response.text
    assert response.json()["patches"]["checkpoint"] == "none loaded"
