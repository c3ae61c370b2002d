"""Stand-in for modules/ui_common.py (A1111 v1.10.1, 82a973c0): create_refresh_button with the
real signature and behaviour (less the WebUI-only `tooltip=` keyword, which plain gradio lacks)."""

import gradio as gr

from modules.ui_components import ToolButton

refresh_symbol = "\U0001f504"  # 🔄


def create_refresh_button(refresh_component, refresh_method, refreshed_args, elem_id):
    refresh_components = refresh_component if isinstance(refresh_component, list) else [refresh_component]

    def refresh():
        refresh_method()
        args = refreshed_args() if callable(refreshed_args) else refreshed_args

        for k, v in args.items():
            for comp in refresh_components:
                setattr(comp, k, v)

        updates = [gr.update(**(args or {})) for _ in refresh_components]
        return updates if len(refresh_components) > 1 else updates[0]

    refresh_button = ToolButton(value=refresh_symbol, elem_id=elem_id)
    refresh_button.click(fn=refresh, inputs=[], outputs=refresh_components)
    return refresh_button
