"""Stand-in for modules/infotext_utils.py (A1111 v1.10.1, 82a973c0): quote / unquote, the
parameter-line half of parse_generation_parameters (lines 16-17, 56-70, 233-275) and the paste
button's connect_paste (476-535, less params.txt, the settings override and the prompt recount).
Left out: styles, the Hires/size post-processing of known keys. Imports nothing of the WebUI at
the top (the core tests load this file by path)."""

from __future__ import annotations

import json
import re

re_param_code = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
re_param = re.compile(re_param_code)


def quote(text):
    if ',' not in str(text) and '\n' not in str(text) and ':' not in str(text):
        return text

    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text

    try:
        return json.loads(text)
    except Exception:
        return text


def parse_generation_parameters(x: str, skip_fields: list | None = None):
    res = {}
    prompt = ""
    negative_prompt = ""
    done_with_prompt = False

    *lines, lastline = x.strip().split("\n")
    if len(re_param.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ''

    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative_prompt += ("" if negative_prompt == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line

    for k, v in re_param.findall(lastline):
        if v[0] == '"' and v[-1] == '"':
            v = unquote(v)
        res[k] = v

    res["Prompt"] = prompt
    res["Negative prompt"] = negative_prompt
    return res


def connect_paste(button, paste_fields, input_comp):
    """The paste button: parse the prompt box's infotext and set each (component, key) field; a
    callable key is called with the parsed fields, None leaves the component as it is."""
    import gradio as gr

    from modules import errors, script_callbacks

    def paste_func(prompt):
        params = parse_generation_parameters(prompt)
        script_callbacks.infotext_pasted_callback(prompt, params)
        res = []
        for output, key in paste_fields:
            if callable(key):
                try:
                    v = key(params)
                except Exception:
                    errors.report(f"Error executing {key}", exc_info=True)
                    v = None
            else:
                v = params.get(key, None)
            if v is None:
                res.append(gr.update())
            elif isinstance(v, dict) and v.get("__type__") == "update":
                res.append(v)
            else:
                try:
                    valtype = type(output.value)
                    if valtype == bool and v == "False":
                        val = False
                    elif valtype == int:
                        val = float(v)
                    else:
                        val = valtype(v)
                    res.append(gr.update(value=val))
                except Exception:
                    res.append(gr.update())
        return res

    button.click(fn=paste_func, inputs=[input_comp], outputs=[x[0] for x in paste_fields], show_progress=False)
