"""Stand-in for modules/options.py (A1111 v1.10.1, 82a973c0): OptionInfo, and Options reading
`data` first, then the registered default (`Options.__getattr__`)."""


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None,
                 section=None, refresh=None, comment_before="", comment_after="", infotext=None,
                 restrict_api=False, category_id=None):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.onchange = onchange
        self.section = section
        self.infotext = infotext

    def info(self, info):
        return self

    def needs_reload_ui(self):
        return self


class Options:
    def __init__(self, data_labels: dict):
        super().__setattr__("data_labels", dict(data_labels))
        super().__setattr__("data", {})

    def __getattr__(self, item):
        if item in self.data:
            return self.data[item]
        if item in self.data_labels:
            return self.data_labels[item].default
        raise AttributeError(item)

    def __setattr__(self, key, value):
        if key in ("data", "data_labels"):
            return super().__setattr__(key, value)
        self.data[key] = value

    def set(self, key, value, is_api=False, run_callbacks=True):
        self.data[key] = value
        return True

    def get_default(self, key):
        info = self.data_labels.get(key)
        return None if info is None else info.default

    def add_option(self, key, info):
        self.data_labels[key] = info
        if key not in self.data and not getattr(info, "do_not_save", False):
            self.data[key] = info.default
