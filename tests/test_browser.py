"""The W2SD accordion in a real browser: the UI that lib_w2sd.webui.surface.ui builds, loaded from
scripts/w2sd.py into a stand-in txt2img page (tests/stubs/page.py, a gr.Blocks served on
127.0.0.1 with the extension's javascript/w2sd.js), driven by Playwright with Debian's chromium
(never a downloaded browser; dev/setup_browser.sh installs it). Checks what a user sees: the
accordion opening, each preset filling its fields, an edit turning the preset to Custom, kinds
showing and hiding their fields, the unit following a typed whole number and the sampling steps,
the hover hints, the status line, a paste restoring every field, and no page errors."""

import json
import os
import socket
import time

import pytest
from test_params import INFOTEXT_UTILS, VARIED

from lib_w2sd.params import CUSTOM, KIND_FIELDS, PRESET_KINDS, PRESETS, UI_FIELDS, W2SDParams

STAND_IN = "stubs"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHECKPOINTS = ["base-v1-5.safetensors", "dreamshaper_8.safetensors"]
TAB = "txt2img"
# How each field reads in the page (javascript READ below).
KINDS = {
    "enabled": "checkbox", "preset": "dropdown", "weak_kinds": "group", "weak_cfg": "number", "strong_cfg": "number",
    "weak_prompt": "text", "weak_negative_prompt": "text", "weak_lora_multiplier": "number",
    "strong_lora_multiplier": "number", "weak_checkpoint": "dropdown", "weak_controlnet_weight": "number",
    "strong_controlnet_weight": "number", "reflect_steps": "number",
    "reflect_unit": "radio", "strength": "number", "weak_sigma": "radio", "reflections": "number",
    "hires": "checkbox", "hires_reflect_steps": "number",
}
READ = """(kinds) => {
    const app = gradioApp();
    const out = {};
    for (const [name, kind] of Object.entries(kinds)) {
        const id = `w2sd_txt2img_${name}` + (name === "enabled" ? "-checkbox" : "");
        const block = app.querySelector("#" + id);
        if (!block) { out[name] = "<missing>"; continue; }
        const ticked = [...block.querySelectorAll("label")].filter((l) => l.querySelector("input:checked"))
            .map((l) => l.textContent.trim());
        if (kind === "checkbox") out[name] = block.querySelector("input[type=checkbox]").checked;
        else if (kind === "dropdown") out[name] = block.querySelector("input").value;
        else if (kind === "group") out[name] = ticked;
        else if (kind === "radio") out[name] = ticked.length ? ticked[0] : null;
        else if (kind === "number") out[name] = parseFloat(block.querySelector("input[type=number]").value);
        else out[name] = block.querySelector("textarea").value;
    }
    return out;
}"""


def test_every_field_has_a_reader():
    assert set(KINDS) == set(UI_FIELDS)


# -- the server and the browser -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(stand_in, tmp_path_factory):
    """The stand-in page with two checkpoints listed, served on 127.0.0.1."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from modules import sd_models

    directory = tmp_path_factory.mktemp("Stable-diffusion")
    for name in CHECKPOINTS:
        (directory / name).write_bytes(b"\0" * 16)
    sd_models.list_models(str(directory))
    import page

    demo, _ = page.build(os.path.join(ROOT, "scripts", "w2sd.py"))
    port = _free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing (dev/setup_browser.sh installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True)
        yield context
        context.close()


@pytest.fixture
def page(server, browser):
    """A fresh load of the page with the WebUI's scripts and javascript/w2sd.js; page errors and
    console errors are collected in page.w2sd_errors."""
    scripts = [os.path.join(ROOT, "tests", "stubs", "page.js"), os.path.join(ROOT, "javascript", "w2sd.js")]
    tab = browser.new_page()
    tab.w2sd_errors = []
    tab.on("pageerror", lambda error: tab.w2sd_errors.append(f"page error: {error}"))
    tab.on("console", lambda m: tab.w2sd_errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    # Nothing leaves 127.0.0.1 (gradio's theme asks for web fonts): other requests get an empty answer.
    tab.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server)
              else route.fulfill(status=200, body=""))
    # In the global scope, as the WebUI's <head> scripts run (Playwright runs an init script in a
    # function of its own, where the files' top-level functions would not be globals).
    code = "\n".join(open(path, encoding="utf-8").read() for path in scripts)
    tab.add_init_script(f"(0, eval)({json.dumps(code)});")
    tab.goto(server)
    tab.wait_for_selector(f"#w2sd_{TAB}_enabled .label-wrap", timeout=60000)
    tab.wait_for_function("() => executedOnLoaded && gradioApp().querySelector('.input-accordion-checkbox')")
    yield tab
    tab.close()


# -- helpers ----------------------------------------------------------------------------------------
def sel(name: str) -> str:
    return f"#w2sd_{TAB}_{name}"


def read(page) -> dict:
    return page.evaluate(READ, KINDS)


def wait_until(page, check, what: str, timeout: float = 10.0):
    """Poll the page's fields until check(fields) holds; fail with what was seen."""
    deadline = time.monotonic() + timeout
    while True:
        fields = read(page)
        if check(fields):
            return fields
        if time.monotonic() > deadline:
            pytest.fail(f"{what}; the page shows {fields}")
        page.wait_for_timeout(100)


def status(page) -> str:
    return page.locator(sel("status")).last.inner_text()  # gradio 3 repeats a Markdown's elem_id inside


def wait_status(page, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in (shown := status(page)):
        if time.monotonic() > deadline:
            pytest.fail(f"the status line should say {text!r}; it says {shown!r}")
        page.wait_for_timeout(100)
    return shown


def open_accordion(page, advanced=False):
    page.click(f"{sel('enabled')} .label-wrap")
    page.locator(sel("preset")).wait_for(state="visible")
    if advanced:
        page.click(f"{sel('advanced')} .label-wrap")
        page.locator(sel("weak_sigma")).wait_for(state="visible")


def pick_preset(page, name: str):
    page.click(f"{sel('preset')} input")
    page.locator(f"{sel('preset')} li", has_text=name).first.click()


def type_number(page, name: str, value):
    field = page.locator(f"{sel(name)} input[type=number]")
    field.fill(str(value))
    field.press("Tab")


def tick(page, name: str, label: str):
    page.locator(f"{sel(name)} label", has_text=label).first.click()


def no_page_errors(page):
    page.wait_for_timeout(300)
    assert page.w2sd_errors == []


# -- the tests ------------------------------------------------------------------------------------------
def test_opening_the_accordion_ticks_w2sd_and_says_nothing_is_chosen(page):
    assert not page.locator(sel("preset")).is_visible()
    assert read(page)["enabled"] is False
    open_accordion(page)
    wait_until(page, lambda f: f["enabled"] is True, "opening the accordion ticks W2SD (as the WebUI's InputAccordion)")
    assert "nothing is reflected" in status(page)
    assert not page.locator(sel("weak_sigma")).is_visible()  # Advanced is closed
    no_page_errors(page)


@pytest.mark.parametrize("name", [n for n in PRESETS if n != CUSTOM])
def test_each_preset_fills_and_shows_its_fields(page, name):
    open_accordion(page, advanced=True)
    pick_preset(page, name)
    shown = dict(zip(UI_FIELDS, W2SDParams().with_preset(name).to_list()))  # from params, not from the UI code
    expected = {field: shown[field] for field in PRESETS[name]} | {"weak_kinds": list(PRESET_KINDS[name])}
    wait_until(page, lambda f: all(f[k] == v for k, v in expected.items()),
               f"the preset {name!r} should fill {expected}")
    in_groups = {field for fields in KIND_FIELDS.values() for field in fields}
    for field in set(expected) - in_groups:
        page.locator(sel(field)).wait_for(state="visible", timeout=5000)
    for label, fields in KIND_FIELDS.items():
        for field in fields:
            page.locator(sel(field)).wait_for(state="visible" if label in expected["weak_kinds"] else "hidden",
                                              timeout=5000)
    assert read(page)["preset"] == name
    no_page_errors(page)


def test_editing_a_field_the_preset_set_turns_it_to_custom(page):
    open_accordion(page)
    pick_preset(page, "Z-Sampling (CFG gap)")
    wait_until(page, lambda f: f["weak_kinds"] == ["CFG"], "Z-Sampling ticks CFG")
    type_number(page, "strength", 0.5)  # not a field Z-Sampling sets
    page.wait_for_timeout(500)
    assert read(page)["preset"] == "Z-Sampling (CFG gap)"
    type_number(page, "weak_cfg", 2)
    wait_until(page, lambda f: f["preset"] == CUSTOM, "editing Weak CFG turns the preset to Custom")
    assert read(page)["weak_cfg"] == 2
    no_page_errors(page)


def test_kinds_show_and_hide_their_fields(page):
    open_accordion(page)
    for label, fields in KIND_FIELDS.items():
        tick(page, "weak_kinds", label)
        page.locator(sel(fields[0])).wait_for(state="visible")
        tick(page, "weak_kinds", label)
        page.locator(sel(fields[0])).wait_for(state="hidden")
    tick(page, "weak_kinds", "Prompt")
    wait_status(page, "Weak prompt and Weak negative prompt are empty")
    page.locator(f"{sel('weak_prompt')} textarea").fill("a fox")
    page.locator(f"{sel('weak_prompt')} textarea").press("Tab")
    page.wait_for_function(f"() => !gradioApp().querySelector('{sel('status')}').innerText.trim()")
    no_page_errors(page)


def test_typed_whole_number_switches_the_unit_and_steps_follow_the_sampling_steps(page):
    open_accordion(page)
    type_number(page, "reflect_steps", 5)
    wait_until(page, lambda f: f["reflect_unit"] == "steps", "typing 5 in Reflect steps switches the unit to steps")
    assert read(page)["reflect_steps"] == 5
    type_number(page, "reflect_steps", 0.25)
    wait_until(page, lambda f: f["reflect_unit"] == "fraction", "typing 0.25 switches the unit back to fraction")
    page.locator("#txt2img_steps input[type=number]").fill("8")
    page.locator("#txt2img_steps input[type=number]").press("Tab")
    page.wait_for_timeout(500)
    tick(page, "reflect_unit", "steps")
    wait_until(page, lambda f: f["reflect_steps"] == 4 and f["hires_reflect_steps"] == 4,
               "the steps unit starts at half of the 8 sampling steps")
    tick(page, "reflect_unit", "fraction")
    wait_until(page, lambda f: f["reflect_steps"] == 0.5, "the fraction unit starts at 0.5")
    type_number(page, "reflect_steps", 2.5)
    wait_status(page, "Reflect steps (reflect_steps) must be")
    no_page_errors(page)


def test_a_typed_unknown_checkpoint_is_named_when_entered(page):
    open_accordion(page)
    tick(page, "weak_kinds", "Checkpoint")
    wait_status(page, "no Weak checkpoint is chosen")
    field = page.locator(f"{sel('weak_checkpoint')} input")
    field.fill("nope.safetensors")
    field.press("Enter")
    field.press("Tab")
    wait_status(page, "Weak checkpoint (weak_checkpoint) must be a checkpoint from the WebUI's list")
    no_page_errors(page)


def test_hover_hints(page):
    hints = page.evaluate("""() => {
        const app = gradioApp();
        const title = (s) => { const e = app.querySelector(s); return e ? e.title : null; };
        return {header: title("#w2sd_txt2img_enabled .label-wrap"), preset: title("#w2sd_txt2img_preset"),
                advanced: title("#w2sd_txt2img_advanced .label-wrap"), sigma: title("#w2sd_txt2img_weak_sigma"),
                steps: title("#w2sd_txt2img_reflect_steps"),
                start: [...app.querySelectorAll("#w2sd_txt2img_weak_sigma label")].map((l) => l.title)};
    }""")
    assert "Weak-to-Strong" in hints["header"]
    assert "preset" in hints["preset"].lower() or "Fills" in hints["preset"]
    assert hints["advanced"] and hints["sigma"] and "whole number" in hints["steps"]
    assert len(hints["start"]) == 3 and all(hints["start"])
    no_page_errors(page)


def test_paste_restores_every_field(page):
    params = W2SDParams.from_dict({**VARIED, "weak_checkpoint": CHECKPOINTS[1]})
    fields = {"Steps": 20, "Sampler": "Euler", "CFG scale": 7, **params.to_infotext()}
    text = "a red fox\n" + ", ".join(f"{k}: {INFOTEXT_UTILS.quote(v)}" for k, v in fields.items())
    page.locator("#txt2img_prompt textarea").fill(text)
    page.click("#paste")
    expected = dict(zip(UI_FIELDS, params.to_list()))
    wait_until(page, lambda f: f == expected, f"the paste should restore {expected}")
    page.locator(sel("weak_checkpoint")).wait_for(state="visible")  # the paste opened the accordion
    assert page.locator(sel("hires_reflect_steps")).is_visible()
    no_page_errors(page)


def test_the_error_check_sees_page_errors(page):
    """no_page_errors is not vacuous: an uncaught error in the page is collected."""
    page.evaluate("() => setTimeout(() => { throw new Error('w2sd probe'); })")
    page.wait_for_timeout(300)
    assert any("w2sd probe" in error for error in page.w2sd_errors)
