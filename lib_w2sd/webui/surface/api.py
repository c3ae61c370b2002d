"""Bad W2SD arguments in an API request get HTTP 422 naming the field, never a silent fallback.

Why a middleware: the WebUIs copy `alwayson_scripts.w2sd.args` into the script's positional
args (A1111 1.10 modules/api/api.py `init_script_args`) and run the script's process() inside
a try/except that only logs (modules/scripts.py ScriptRunner.process), so an error raised there
never reaches the client. This ASGI middleware reads the JSON body of POST /sdapi/v1/txt2img and
/img2img first, validates the W2SD args (the named dict or the UI's positional list) and the W2SD
keys of a request's `infotext`, answers 422 with {"error", "field", "allowed", "detail"} when
they are bad, and otherwise passes the request on untouched (the body is replayed).

GET /w2sd/v1/state answers a fingerprint of what W2SD patches (sampler functions, apply_model,
the UNet's weights and hooks, LoRA / ControlNet state, options, W2SD's caches), computed by the
backend, and W2SD's settings: tools/soak.py compares the fingerprint before and after a run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...params import INFOTEXT_KEYS, ParamsError, W2SDParams
from . import settings

ENDPOINTS = ("/sdapi/v1/txt2img", "/sdapi/v1/img2img")
SCRIPT_NAME = "w2sd"
ARGS_FORMS = "a list: [{named fields}] or the UI's positional values"


def request_error(body: Any) -> ParamsError | None:
    """The first problem with the W2SD parts of a decoded request body, or None."""
    if not isinstance(body, Mapping):
        return None  # not ours to judge: the WebUI's own validation answers
    try:
        args = _w2sd_args(body.get("alwayson_scripts"))
        if args is not None:
            _validate(W2SDParams.from_script_args(args, default_preset=settings.default_preset()))
        elif isinstance(body.get("infotext"), str) and INFOTEXT_KEYS["enabled"] in body["infotext"]:
            _validate(_params_from_infotext(body["infotext"]))
    except ParamsError as error:
        return error
    return None


def _w2sd_args(scripts: Any) -> list | None:
    """The args given for the W2SD script (matched case-insensitively, as the WebUI does)."""
    if not isinstance(scripts, Mapping):
        return None
    for name, entry in scripts.items():
        if isinstance(name, str) and name.lower() == SCRIPT_NAME:
            if not isinstance(entry, Mapping) or "args" not in entry:
                return None  # no args: the UI's defaults run
            args = entry["args"]
            if not isinstance(args, list):
                raise ParamsError("args", ARGS_FORMS, args)
            if len(args) > 1 and isinstance(args[0], Mapping):
                # the script would read the dict and ignore the rest (those slots hold the UI's
                # defaults there): in a request they are a mistake, not defaults
                raise ParamsError("args", ARGS_FORMS + " (one dict, nothing after it)", args)
            return args
    return None


def _params_from_infotext(infotext: str) -> W2SDParams | None:
    try:
        from modules.infotext_utils import parse_generation_parameters
    except ImportError:
        return None
    return W2SDParams.from_infotext(parse_generation_parameters(infotext))


def _validate(params: W2SDParams | None) -> None:
    if params is not None and params.enabled:
        from .ui import check_checkpoint

        check_checkpoint(params.weak_checkpoint)


def error_body(error: ParamsError) -> dict:
    return {"error": "W2SDParamsError", "field": error.field, "allowed": error.allowed, "detail": str(error)}


class W2SDArgsMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware, whose body handling differs between Starlette versions)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or scope.get("method") != "POST" or scope.get("path") not in ENDPOINTS:
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        error = _body_error(body)
        if error is not None:
            await _send_json(send, 422, error_body(error))
            return

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _body_error(body: bytes) -> ParamsError | None:
    try:
        decoded = json.loads(body or b"null")
    except ValueError:
        return None  # FastAPI answers malformed JSON itself
    try:
        return request_error(decoded)
    except Exception as error:  # noqa: BLE001  (a bug here must not take the endpoint down)
        print(f"W2SD: could not check the request's W2SD args: {error!r}")
        return None


async def _send_json(send, status: int, content: dict) -> None:
    data = json.dumps(content).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def install(app) -> bool:
    """Add the middleware innermost (after CORS and gzip) to a running FastAPI app, once. Starlette
    builds its middleware stack on first use; both WebUIs rebuild it the same way after launch."""
    if any(getattr(m.cls, "__name__", "") == W2SDArgsMiddleware.__name__ for m in app.user_middleware):
        return False
    from starlette.middleware import Middleware

    app.user_middleware.append(Middleware(W2SDArgsMiddleware))
    app.middleware_stack = app.build_middleware_stack()
    return True


STATE_ROUTE = "/w2sd/v1/state"


def state() -> dict:
    """GET /w2sd/v1/state: the backend's read-only fingerprint of what W2SD patches (base.Backend.state),
    and W2SD's settings as generations read them. A1111 1.10's GET /sdapi/v1/options leaves every
    extension's settings out (its response model is built while the script UIs are made, before the
    extensions register settings: A modules/scripts.py:645, modules/api/models.py:209-219, api.py:220),
    though POST sets them."""
    from .. import detect_backend

    return {**detect_backend().state(), "settings": settings.values()}


def add_state_route(app) -> bool:
    """Register GET /w2sd/v1/state once. A plain (sync) route: FastAPI runs it in a worker thread."""
    if any(getattr(route, "path", None) == STATE_ROUTE for route in app.routes):
        return False
    app.add_api_route(STATE_ROUTE, state, methods=["GET"])
    return True


def on_app_started(demo, app) -> None:
    install(app)
    add_state_route(app)
