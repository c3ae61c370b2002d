"""GET /w2sd/v1/state on the Forge stand-in (tests/stubs_forge): see state_patterns.py."""

from state_patterns import harness_checkpoint, patcher_weak_unet, state_tests

STAND_IN = "stubs_forge"

globals().update(state_tests("a red cat <lora:style:0.8>", harness_checkpoint, patcher_weak_unet("forge_unet")))


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
