"""API validation: bad W2SD args in /sdapi/v1/txt2img and /img2img get HTTP 422 naming the field
and the allowed values; good ones reach the endpoint byte for byte. A real FastAPI app stands in
for the WebUI's, with the middleware added after the app has served a request (as the WebUIs'
on_app_started runs after launch)."""

import json

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from lib_w2sd.params import W2SDParams

STAND_IN = "stubs"


@pytest.fixture(scope="module")
def client(stand_in, tmp_path_factory):
    from modules import sd_models

    from lib_w2sd.webui.surface import api

    directory = tmp_path_factory.mktemp("ckpt")
    (directory / "base.safetensors").write_bytes(b"\0" * 16)
    sd_models.list_models(str(directory))

    app = FastAPI()

    async def echo(request: Request):
        return {"received": (await request.body()).decode()}

    for path in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/sdapi/v1/options"):
        app.add_api_route(path, echo, methods=["POST"])
    test_client = TestClient(app)
    assert test_client.post("/sdapi/v1/txt2img", json={}).status_code == 200  # the stack is built
    api.on_app_started(None, app)
    assert not api.install(app)  # once only
    return test_client


def post(client, args, path="/sdapi/v1/txt2img", key="w2sd", **body):
    return client.post(path, json={"prompt": "cat", "alwayson_scripts": {key: {"args": args}}, **body})


GOOD = [
    [{"enabled": True, "preset": "Z-Sampling (CFG gap)"}],
    [{"enabled": True, "weak_prompt": "cat", "reflect_steps": 8, "reflect_unit": "steps"}],
    [{"enabled": True, "weak_lora_multiplier": 0, "strong_lora_multiplier": 1.2}],
    [{"enabled": True, "weak_checkpoint": "base.safetensors", "strength": 0.8}],
    W2SDParams.from_dict({"enabled": True, "preset": "Paper defaults (LoRA +1.5/-1.5, CFG 5.5/1.0)"}).to_list(),
    [True, "Custom", ["CFG"], 1.0],  # a short positional list: the rest are the UI's defaults
    [{"enabled": True, "weak_cfg": 1.0, "reflect_steps": 5}],  # a whole number without a unit: 5 steps
    [True, "Custom", ["CFG"], 1.0, 0, "", "", 0, 0, "", 5],  # the same in a list that stops before the unit
    [],
]


@pytest.mark.parametrize("args", GOOD)
def test_good_args_pass_through_untouched(client, args):
    for path in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img"):
        response = post(client, args, path)
        assert response.status_code == 200, response.text
        assert json.loads(response.json()["received"])["alwayson_scripts"]["w2sd"]["args"] == args


BAD = [
    ([{"enabled": True, "weak_cfg": "high"}], "weak_cfg", "a number from 0 to 30"),
    ([{"enabled": True, "weak_sigma": "later"}], "weak_sigma", "'next', 'current'"),
    ([{"enabled": True, "preset": "Z"}], "preset", "'Z-Sampling (CFG gap)'"),
    ([{"enabled": True, "wek_cfg": 1}], "wek_cfg", "one of the known fields"),
    ([{"enabled": True, "weak_checkpoint": "/models/other.ckpt"}], "weak_checkpoint", "'base.safetensors'"),
    ([True, "Custom", "CFG"], "weak_kinds", "'CFG', 'Prompt', 'LoRA', 'Checkpoint'"),
    ([True, "Custom", ["CFG"], 1.0, 0, "", "", 0, 0, "", 3.0, "fraction"], "reflect_steps", "a fraction from 0 to 1"),
    ([{"enabled": True, "weak_cfg": 1.0, "reflect_steps": 5, "reflect_unit": "fraction"}], "reflect_steps",
     "a fraction from 0 to 1"),  # a given unit wins
    ({"enabled": True}, "args", "a list"),
    # a dict with more after it: the script would silently ignore the rest (found by tools/soak.py)
    ([{"enabled": True, "weak_cfg": 1.0}, {"weak_cfg": "x"}], "args", "one dict, nothing after it"),
    ([{"enabled": True}, True, "Custom"], "args", "one dict, nothing after it"),
]


@pytest.mark.parametrize("args, field, allowed", BAD, ids=[b[1] for b in BAD])
def test_bad_args_get_422_naming_the_field(client, args, field, allowed):
    response = post(client, args, key="W2SD")  # script names match case-insensitively, as in the WebUI
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "W2SDParamsError" and body["field"] == field
    assert allowed in body["allowed"] and (f"({field})" in body["detail"] or f"'{field}'" in body["detail"])
    assert body["detail"].count(body["allowed"]) == 1 and "W2SD" not in body["detail"]  # one plain sentence


def test_other_requests_are_not_ours(client):
    assert post(client, [{"bad": 1}], key="controlnet").status_code == 200
    assert post(client, [{"bad": 1}], path="/sdapi/v1/options").status_code == 200
    assert client.post("/sdapi/v1/txt2img", content=b"{not json").status_code == 200  # FastAPI's to judge
    assert client.post("/sdapi/v1/txt2img", json=[1, 2]).status_code == 200
    assert client.post("/sdapi/v1/txt2img", json={"alwayson_scripts": {"w2sd": {}}}).status_code == 200


def test_request_error_unit(stand_in):
    from lib_w2sd.webui.surface import api

    assert api.request_error({"alwayson_scripts": {"w2sd": {"args": [{"enabled": False}]}}}) is None
    error = api.request_error({"alwayson_scripts": {"w2sd": {"args": [{"strength": 9}]}}})
    assert error.field == "strength" and "from 0 to 3" in error.allowed


def test_422_detail_is_the_sentence_the_image_shows(stand_in):
    from lib_w2sd.params import ParamsError
    from lib_w2sd.webui.surface import api

    error = api.request_error({"alwayson_scripts": {"w2sd": {"args": [{"enabled": True, "weak_sigma": "later"}]}}})
    assert isinstance(error, ParamsError)
    assert api.error_body(error)["detail"] == str(error) == (
        "Weak model sees (weak_sigma) must be one of 'start', 'next', 'current'; got 'later'")
