"""A txt2img page as A1111 1.10 builds it (modules/ui.py create_ui, 82a973c0), cut down to what
the W2SD accordion touches: the prompt box and its paste button (txt2img_prompt, paste; connected
by infotext_utils.connect_paste), the Sampling steps slider (modules/processing_scripts/sampler.py)
and Hires steps (ui.py 317) built before the scripts' section, as in the default order, and the
W2SD script loaded from scripts/w2sd.py through ScriptRunner (show(), then after_component for
each slider, then ui()). page.js beside this file stands in for the WebUI's page scripts; the
browser loads it and then the extension's javascript/*.js, as the WebUI's <head> does."""

import gradio as gr

from modules import infotext_utils, scripts


def build(script_path: str):
    """The page (a gr.Blocks, not launched) and the W2SD script instance."""
    script = scripts.load_script(script_path)()
    runner = scripts.ScriptRunner([script])
    with gr.Blocks(analytics_enabled=False, title="Stable Diffusion") as demo:
        with gr.Tab("txt2img", elem_id="tab_txt2img"):
            prompt = gr.Textbox(label="Prompt", elem_id="txt2img_prompt", lines=3)
            paste = gr.Button("\u2199\ufe0f", elem_id="paste")
            for elem_id, label, low, value in (("txt2img_steps", "Sampling steps", 1, 20),
                                               ("txt2img_hires_steps", "Hires steps", 0, 0)):
                runner.after_component(gr.Slider(minimum=low, maximum=150, step=1, value=value, label=label,
                                                 elem_id=elem_id))
            script.controls = script.ui(False)
            infotext_utils.connect_paste(paste, script.infotext_fields, prompt)
    return demo, script
