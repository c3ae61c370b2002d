"""rows.py: the UNet rows of a joint call, recorded and served (WebUI-free)."""

import torch

from lib_w2sd.webui import rows


class Model(torch.nn.Module):
    """apply_model(x, t, cond) like ldm's, counting the rows it really evaluates."""

    def __init__(self):
        super().__init__()
        self.evaluated = []

    def apply_model(self, x, t, cond):
        self.evaluated.append(x.shape[0])
        return x * 2 + t[:, None] + cond.sum(1, keepdim=True)


def keys(x, t, cond):
    return rows.row_keys(x.shape[0], [x, t, cond])


def test_recorded_rows_answer_a_batch_made_of_rows_from_several_calls():
    model, cache = Model(), rows.RowCache()
    x, t, cond = torch.randn(4, 3), torch.arange(4.0), torch.randn(4, 2)
    with rows.routed(model, "apply_model", cache, True, keys):
        first = model.apply_model(x[:2], t[:2], cond[:2])  # a denoiser splitting its batch in two
        second = model.apply_model(x[2:], t[2:], cond[2:])
    with rows.routed(model, "apply_model", cache, False, keys):
        pick = [3, 0]
        served = model.apply_model(x[pick], t[pick], cond[pick])
    assert model.evaluated == [2, 2]  # the replayed batch ran no model
    assert torch.equal(served, torch.cat([first, second])[pick])
    assert cache.served == 1


def test_a_batch_with_an_unseen_row_runs_the_model():
    model, cache = Model(), rows.RowCache()
    x, t, cond = torch.randn(2, 3), torch.arange(2.0), torch.randn(2, 2)
    with rows.routed(model, "apply_model", cache, True, keys):
        model.apply_model(x, t, cond)
    other = cond.clone()
    other[1] += 1
    with rows.routed(model, "apply_model", cache, False, keys):
        out = model.apply_model(x, t, other)
    assert model.evaluated == [2, 2] and cache.served == 0
    assert torch.equal(out, x * 2 + t[:, None] + other.sum(1, keepdim=True))


def test_keys_tell_rows_apart_by_every_input_and_flag():
    x = torch.zeros(2, 3)
    a = rows.row_keys(2, [x, torch.tensor([1.0, 1.0])], ["cond", "uncond"])
    assert not rows._same(a[0], a[1])  # same tensors, other cond/uncond mark
    b = rows.row_keys(2, [x, torch.tensor([1.0, 1.0]).double()], ["cond", "uncond"])
    assert not rows._same(a[0], b[0])  # other dtype
    whole = rows.row_keys(2, [x, torch.ones(1, 3), torch.ones(5, 3)])
    assert len(whole[0]) == 2 and torch.equal(whole[0][1], torch.ones(1, 3))  # broadcast kept, 5 rows left out


def test_the_owner_comes_back_exactly():
    model, cache = Model(), rows.RowCache()
    with rows.routed(model, "apply_model", cache, True, keys):
        assert "apply_model" in vars(model)
    assert "apply_model" not in vars(model)

    def own(x, t, cond):
        return x

    model.apply_model = own  # an instance attribute of its own (a hijack) is put back, not removed
    try:
        with rows.routed(model, "apply_model", cache, True, keys):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert vars(model)["apply_model"] is own
