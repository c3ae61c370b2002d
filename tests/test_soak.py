"""tools/soak.py's own logic, no WebUI: loopback refusal, the request mix (bounded, deterministic for a
seed, every kind and preset), the checks' verdicts on recorded results, and a whole run against a
small local HTTP server that answers like a WebUI (W2SD's args validated by lib_w2sd.params)."""

import base64
import hashlib
import http.server
import json
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import soak  # noqa: E402

from lib_w2sd.params import ParamsError, W2SDParams  # noqa: E402

FACTS = {"controlnet": "control_random_sd15 [06f72818]", "forge": False, "steps": 2}


@pytest.mark.parametrize("url", ["http://10.0.0.1:7860", "http://8.8.8.8", "http://example.invalid:7860",
                                 "https://127.0.0.1:7860", "ftp://127.0.0.1", "127.0.0.1:7860"])
def test_non_loopback_targets_are_refused(url):
    with pytest.raises(soak.Refused):
        soak.loopback_url(url)
    assert soak.main([url, "--out", "/nonexistent/never-written"]) == 2


@pytest.mark.parametrize("url, base", [("http://127.0.0.1:7860", "http://127.0.0.1:7860"),
                                       ("http://localhost:7861/", None), ("http://127.3.4.5:80", "http://127.3.4.5:80"),
                                       ("http://[::1]:7860", "http://[::1]:7860")])
def test_loopback_targets_are_accepted(url, base):
    got = soak.loopback_url(url)
    assert got == base if base else got in ("http://127.0.0.1:7861", "http://[::1]:7861")


@pytest.mark.parametrize("facts", [FACTS, dict(FACTS, controlnet=None, forge=True)])
def test_the_plan_is_bounded_deterministic_and_covers_every_kind(facts):
    plan = soak.build_plan(3, 300, facts)
    specs = soak.plan_specs(plan)
    assert plan == soak.build_plan(3, 300, facts)
    assert plan != soak.build_plan(4, 300, facts)
    for bound in (300, 60):  # HTTP requests, the closing ones included
        sent = sum(map(soak.http_requests, soak.plan_specs(soak.build_plan(3, bound, facts)))) + 3  # + options, alive
        assert bound - 20 <= sent <= bound
    generated = {(s.get("mode"), s.get("variant")) for s in specs if s["op"] == "generate"}
    assert {v for _, v in generated} >= set(soak.w2sd_variants(facts, "b")) | {None}
    assert {m for m, _ in generated} == set(soak.MODES)
    assert ("controlnet" in {v for _, v in generated}) == bool(facts["controlnet"])
    ops = {s["op"] for s in specs}
    assert ops >= {"bad", "png-info", "interrupt", "skip", "switch", "memory", "reference", "state", "primed"}
    assert [s["at"] for s in specs if s["op"] == "reference"] == ["start", "middle", "end"]
    assert any(s.get("batch_size", 1) > 1 for s in specs) and any(s.get("n_iter", 1) > 1 for s in specs)
    # every preset is sent
    presets = {a[0].get("preset") for v in soak.w2sd_variants(facts, "b").values() for a in [v["args"]]
               if isinstance(a[0], dict)}
    assert presets >= set(soak.PRESETS.values())
    # interrupts, skips, switches and the references run alone on the server
    assert all("serial" in step for step in plan if "parallel" not in step)
    assert not any(s["op"] in ("interrupt", "skip", "switch", "memory", "reference", "primed") for step in plan
                   for s in step.get("parallel", []))


@pytest.mark.parametrize("facts", [FACTS, dict(FACTS, controlnet=None, forge=True)])
def test_the_warm_up_runs_every_kind_of_step_before_rss_is_taken(facts):
    """RSS growth is measured from the 'warm' mark: each memory policy (with a weak-checkpoint
    generation under it), a switch, an interrupt and a skip must have run once before it."""
    specs = soak.plan_specs(soak.build_plan(0, 300, facts))
    warm = specs[:next(i for i, s in enumerate(specs) if s["op"] == "mark")]
    assert {s["policy"] for s in warm if s["op"] == "memory"} == set(soak.MEMORY_POLICIES)
    assert warm[-1]["op"] == "skip" and warm[-2]["op"] == "interrupt"
    assert {"switch", "primed"} <= {s["op"] for s in warm}
    after_policy = [warm[i + 1] for i, s in enumerate(warm) if s["op"] == "memory"]
    assert all(s["op"] == "generate" and s["variant"] == "checkpoint" for s in after_policy)
    # the run ends under the policy it started with (offload), so the run's first policy change is a change
    assert [s["policy"] for s in warm if s["op"] == "memory"][-1] == soak.MEMORY_POLICIES[0]


def test_img2img_repeats_run_alone_after_the_primer():
    """img2img's VAE posterior sample draws from the global RNG the previous request left (both
    WebUIs): a repeat of it is deterministic only after a fixed request."""
    specs = soak.plan_specs(soak.build_plan(3, 300, FACTS))
    repeats = [s for s in specs if s.get("repeat")]
    assert {s["mode"] for s in repeats if s["op"] == "primed"} == {"img2img", "inpaint"}
    assert all(s["mode"] == "txt2img" for s in repeats if s["op"] != "primed")
    assert sum(s["op"] == "primed" for s in specs) >= 4


def test_options_compare_by_the_checkpoint_named():
    start = {"sd_model_checkpoint": "random_sd15_a", "sd_checkpoint_hash": "29e4", "x": 1}
    assert soak.options_diff(start, dict(start, sd_model_checkpoint="random_sd15_a.safetensors",
                                         sd_checkpoint_hash="97a9")) == {}
    assert soak.options_diff(start, dict(start, sd_model_checkpoint="random_sd15_a.safetensors [97a90d0218]")) == {}
    assert soak.options_diff(start, dict(start, sd_model_checkpoint="random_sd15_b.safetensors")) != {}
    assert soak.options_diff(start, dict(start, x=2)) == {"x": [1, 2]}
    assert soak.options_diff(start, {k: v for k, v in start.items() if k != "x"}) == {"x": [1, None]}


def test_the_bad_requests_are_bad_for_the_field_they_name():
    for args, field in soak.BAD_ARGS:
        assert fake_error(args) == field, (args, field)


def good(n, **kw):
    return {**dict(kind="txt2img/plain", op="generate", expect=200, status=200, images=["h"], n=n), **kw}


def passing_run():
    records = [good(0, op="reference"), good(1, op="reference"), good(2, op="reference"),
               good(3, group="R0@a", images=["x"]), good(4, group="R0@a", images=["x"]),
               dict(kind="bad/weak_cfg", op="bad", expect="4xx", field="weak_cfg", status=422, n=5,
                    body={"field": "weak_cfg", "detail": "Weak CFG (weak_cfg) must be ..."}),
               dict(op="png-info", expect=200, status=200, w2sd_keys=True, n=6),
               good(7, op="round-trip", images=["y"], same_as="y"), good(8, kind="img2img/cfg")]
    marks = {"alive": True, "rss": {"start": 100, "warm": 200, "end": 205}, "options_diff": {},
             "state": {"start": {"patches": {"a": "1"}}, "end": {"patches": {"a": "1"}}},
             "interrupts": [{"op": "interrupt", "served_s": 1.0}]}
    return records, marks


def failed(records, marks):
    return [name for name, ok, _ in soak.verdicts(records, marks) if not ok]


def test_verdicts_pass_a_clean_run():
    assert failed(*passing_run()) == []


@pytest.mark.parametrize("spoil, check", [
    (lambda r, m: r[5].update(status=500), "bad requests"),
    (lambda r, m: r[5]["body"].update(field="weak_prompt"), "bad requests"),
    (lambda r, m: r[5].update(status=200), "bad requests"),
    (lambda r, m: r[8].update(status=500), "other requests"),
    (lambda r, m: r[8].update(images=[]), "other requests"),
    (lambda r, m: m.update(alive=False), "server alive"),
    (lambda r, m: r[1].update(images=["other"]), "plain reference"),
    (lambda r, m: r.pop(2), "plain reference"),
    (lambda r, m: r[4].update(images=["z"]), "repeated requests"),
    (lambda r, m: r[7].update(images=["q"]), "PNG info"),
    (lambda r, m: r[6].update(w2sd_keys=False), "PNG info"),
    (lambda r, m: m["rss"].update(end=211), "server RSS"),
    (lambda r, m: m.update(rss={}), "server RSS"),
    (lambda r, m: m.update(options_diff={"x": [1, 2]}), "options unchanged"),
    (lambda r, m: m["state"]["end"]["patches"].update(a="2"), "W2SD's patch points"),
    (lambda r, m: m.update(state={}), "W2SD's patch points"),
    (lambda r, m: m.update(interrupts=[]), "interrupts"),
])
def test_each_verdict_can_fail(spoil, check):
    records, marks = passing_run()
    spoil(records, marks)
    assert [name.split(":")[0].split(" (")[0][:len(check)] for name in failed(records, marks)] == [check]


# -- a whole run against a local server that answers like a WebUI -------------------------------------
def fake_error(args):
    """The field W2SD's API check would name for these args (as lib_w2sd.webui.surface.api does)."""
    try:
        if not isinstance(args, list):
            raise ParamsError("args", "a list", args)
        if len(args) > 1 and isinstance(args[0], dict):
            raise ParamsError("args", "one dict", args)
        params = W2SDParams.from_script_args(args)
        if params.enabled and params.weak_checkpoint and params.weak_checkpoint.split(".")[0] not in soak.MODELS:
            raise ParamsError("weak_checkpoint", "a checkpoint", params.weak_checkpoint)
    except ParamsError as error:
        return error.field
    return None


class FakeWebUI(http.server.ThreadingHTTPServer):
    """Options, models, generations whose image depends on the request (and, to be caught, on
    `leak`: a number that grows with every W2SD generation when set)."""

    def __init__(self, leak=False, hide_extension_options=False):
        super().__init__(("127.0.0.1", 0), Handler)
        self.options = {"sd_model_checkpoint": "random_sd15_a.safetensors [97a90d0218]",
                        soak.MEMORY_OPTION: "offload", "forge_preset": "sd", "other": 1}
        self.lock, self.leak, self.generations = threading.Lock(), leak, 0
        # A1111 1.10's GET /sdapi/v1/options drops extensions' settings (modules/api/models.py:209-219)
        self.hide_extension_options, self.memory_set = hide_extension_options, []


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        server = self.server
        if self.path == "/sdapi/v1/options":
            hidden = server.hide_extension_options
            return self.answer(200, {k: v for k, v in server.options.items() if not (hidden and k.startswith("w2sd_"))})
        if self.path == "/sdapi/v1/sd-models":
            return self.answer(200, [{"model_name": m, "title": f"{m}.safetensors"} for m in soak.MODELS])
        if self.path == soak.STATE_ROUTE:
            return self.answer(200, {"patches": {"sampler functions": "same"}, "caches": {},
                                     "settings": {soak.MEMORY_OPTION: server.options[soak.MEMORY_OPTION]}})
        if self.path.startswith("/sdapi/v1/progress"):
            return self.answer(200, {"progress": 0})
        return self.answer(404, {"detail": "Not Found"})

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"null")
        if self.path == "/sdapi/v1/options":
            server.options.update(body)
            if soak.MEMORY_OPTION in body:
                server.memory_set.append(body[soak.MEMORY_OPTION])
            return self.answer(200, None)
        if self.path in ("/sdapi/v1/interrupt", "/sdapi/v1/skip"):
            return self.answer(200, None)
        if self.path == "/sdapi/v1/png-info":
            info = json.loads(base64.b64decode(body["image"]).decode().split("|", 1)[1])
            return self.answer(200, {"info": info.pop("_text"), "parameters": info})
        if self.path in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img"):
            args = (body.get("alwayson_scripts") or {}).get("w2sd", {}).get("args")
            field = fake_error(args) if args is not None else None
            if field:
                return self.answer(422, {"error": "W2SDParamsError", "field": field, "detail": f"x ({field}) bad"})
            with server.lock:
                server.generations += 1
                drift = server.generations if server.leak and args else 0
            params = W2SDParams.from_script_args(args or [])
            key = json.dumps([body.get(k) for k in ("prompt", "seed", "steps", "init_images", "mask", "enable_hr")]
                             + [params.to_dict(), server.options["sd_model_checkpoint"][:15], drift])
            w2sd = params.to_infotext()
            info = {"Prompt": body.get("prompt", ""), "Negative prompt": "", "Seed": body.get("seed"),
                    "Steps": body.get("steps"), "CFG scale": 7, "Sampler": "Euler", "Size-1": 64, "Size-2": 64, **w2sd}
            # a PNG-looking image: the fake's "pixels" are the request's hash, its text the infotext
            text = ", ".join(f"{k}: {v}" for k, v in w2sd.items())
            image = base64.b64encode(hashlib.sha256(key.encode()).hexdigest().encode() + b"|"
                                     + json.dumps(dict(info, _text=text)).encode()).decode()
            count = body.get("batch_size", 1) * body.get("n_iter", 1)
            return self.answer(200, {"images": [image] * count, "info": "{}"})
        return self.answer(404, {"detail": "Not Found"})


@pytest.fixture
def fake():
    servers = []

    def start(**kw):
        server = FakeWebUI(**kw)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()


def run_against(server, tmp_path, requests=80):
    port = server.server_address[1]
    code = soak.main([f"http://127.0.0.1:{port}", "--requests", str(requests), "--clients", "3", "--seed", "5",
                      "--out", str(tmp_path), "--pid", str(os.getpid()), "--minutes", "5"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    return code, {c["check"].split(":")[0]: c["passed"] for c in summary["checks"]}, summary


def test_a_run_against_a_well_behaved_server_passes(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(soak, "image_hash", lambda b64: base64.b64decode(b64).split(b"|")[0].decode()[:16])
    server = fake()
    code, checks, summary = run_against(server, tmp_path)
    assert code == 0, summary["checks"]
    assert 70 <= summary["figures"]["requests"] <= 80
    assert server.options[soak.MEMORY_OPTION] == "offload" and server.options["sd_model_checkpoint"].endswith("]")
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    lines = [x for x in lines if json.loads(x)["op"] != "discover"]
    assert len(lines) == summary["figures"]["requests"] and all("status" in json.loads(x) for x in lines)


def test_a_run_against_a_drifting_server_fails(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(soak, "image_hash", lambda b64: base64.b64decode(b64).split(b"|")[0].decode()[:16])
    code, checks, _ = run_against(fake(leak=True), tmp_path)
    assert code == 1
    assert not checks["repeated requests identical across the run"]


def test_memory_changes_reach_an_a1111_whose_get_options_hides_them(fake, tmp_path, monkeypatch):
    """On real A1111 GET /sdapi/v1/options never lists w2sd_checkpoint_memory, so the soak skipped its
    memory changes there; it reads W2SD's settings from the state route now, and puts them back."""
    monkeypatch.setattr(soak, "image_hash", lambda b64: base64.b64decode(b64).split(b"|")[0].decode()[:16])
    server = fake(hide_extension_options=True)
    code, checks, summary = run_against(server, tmp_path)
    assert code == 0, summary["checks"]
    assert set(server.memory_set) == set(soak.MEMORY_POLICIES) and server.memory_set[-1] == "offload"
    assert server.options[soak.MEMORY_OPTION] == "offload"
