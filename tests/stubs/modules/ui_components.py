"""Stand-in for modules/ui_components.py (A1111 v1.10.1, 82a973c0; Forge HEAD's differs only in
wrapping): ToolButton, FormRow and InputAccordion with the same signatures and elem_ids.
So that the same build runs on plain gradio 3.41 and 4.x, two things of Forge's are copied:
ToolButton keeps gr.Button's signature and InputAccordion is Forge's InputAccordionImpl with its
`setup` switch (Forge's ui_components.py 102-170: gradio 4 reads a component's props from its
__init__ signature, and rebuilds a component from its props for every update, with no `value`),
and `_js=` becomes `js=` on gradio 4 (Forge's gradio patch)."""

from functools import wraps

import gradio as gr

_GRADIO4 = int(gr.__version__.split(".")[0]) >= 4
_JS_KEYWORD = "js" if _GRADIO4 else "_js"
if _GRADIO4:
    # Forge's modules/gradio_extensions.py 107-108, imported before its ui_components: classes made
    # after it do not record their own constructor arguments, so gradio 4 rebuilds InputAccordionImpl
    # for an update from the hidden checkbox's arguments (setup False), not from InputAccordion's.
    import gradio.component_meta

    gradio.component_meta.updateable = lambda x: x


class FormComponent:
    def get_expected_parent(self):
        return gr.components.Form


class ToolButton(gr.Button, FormComponent):
    """Small button with single emoji as text, fits inside gradio forms"""

    @wraps(gr.Button.__init__)
    def __init__(self, value="", *args, elem_classes=None, **kwargs):
        elem_classes = elem_classes or []
        super().__init__(*args, elem_classes=["tool", *elem_classes], value=value, **kwargs)

    def get_block_name(self):
        return "button"


class FormRow(FormComponent, gr.Row):
    """Same as gr.Row but fits inside gradio forms"""

    def get_block_name(self):
        return "row"


class InputAccordionImpl(gr.Checkbox):
    """A gr.Accordion that is also an input: a hidden checkbox that follows the accordion's state."""

    global_index = 0

    @wraps(gr.Checkbox.__init__)
    def __init__(self, value=None, setup=False, **kwargs):
        if not setup:  # gradio 4 rebuilding the component for an update
            super().__init__(value=value, **kwargs)
            return
        self.accordion_id = kwargs.get("elem_id")
        if self.accordion_id is None:
            self.accordion_id = f"input-accordion-{InputAccordionImpl.global_index}"
            InputAccordionImpl.global_index += 1

        kwargs_checkbox = {**kwargs, "elem_id": f"{self.accordion_id}-checkbox", "visible": False}
        super().__init__(value, **kwargs_checkbox)

        js = 'function(checked){ inputAccordionChecked("' + self.accordion_id + '", checked); }'
        self.change(fn=None, inputs=[self], **{_JS_KEYWORD: js})

        kwargs_accordion = {
            **kwargs,
            "elem_id": self.accordion_id,
            "label": kwargs.get("label", "Accordion"),
            "elem_classes": ["input-accordion"],
            "open": value,
        }
        self.accordion = gr.Accordion(**kwargs_accordion)

    def extra(self):
        return gr.Column(elem_id=self.accordion_id + "-extra", elem_classes="input-accordion-extra", min_width=0)

    def __enter__(self):
        self.accordion.__enter__()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.accordion.__exit__(exc_type, exc_val, exc_tb)

    def get_block_name(self):
        return "checkbox"


def InputAccordion(value=None, **kwargs):
    return InputAccordionImpl(value=value, setup=True, **kwargs)
