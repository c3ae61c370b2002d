"""The embedded demo (python -m lib_w2sd.demo) on tiny sizes: it runs the real samplers, writes its
PNG, and its printed table shows W2SD moving the 1-D left-peak mass from the strong model's toward
the ideal's."""

import pytest

from lib_w2sd import demo


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return demo.run_demo(str(out), samplers=["Euler"], n_1d=400, n_2d=60, steps=20, seed=0, n_paths=6)


def _table_row(table: str, section: str, sampler: str) -> dict:
    """The cells of `sampler`'s row in the first table after the line starting with `section`."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(section))
    header = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("sampler"))
    row = next(line for line in lines[header + 1:] if line.strip().startswith(sampler + " "))
    cells = row.split()[len(sampler.split()):]
    assert len(cells) == len(demo.METHODS), row
    return dict(zip(demo.METHODS, cells))


def test_writes_a_png_figure(tiny):
    with open(tiny.figure, "rb") as f:
        data = f.read()
    assert tiny.figure.endswith("w2sd_demo.png")
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_table_shows_w2sd_left_mass_between_strong_and_ideal(tiny):
    cells = {k: float(v) for k, v in _table_row(tiny.table, "1-D mixture", "Euler").items()}
    # W2SD.md's check: strong ~0.31, ideal 0.5, W2SD about 0.45-0.56 (it may overshoot slightly)
    assert cells["strong"] + 0.1 < cells["W2SD"] < cells["ideal"] + 0.1, cells
    assert abs(cells["W2SD weak=strong"] - cells["strong"]) < 0.05, cells
    assert cells["swapped"] < cells["weak"], cells
    assert cells["W2SD"] == pytest.approx(float(tiny.one_d.masses["Euler"]["W2SD"][0]), abs=5e-4)


def test_two_d_w2sd_is_closer_to_the_ideal_than_strong(tiny):
    tv = {m: tiny.two_d.total_variation("Euler", m) for m in demo.METHODS}
    assert tv["W2SD"] < tv["strong"] < tv["weak"] < tv["swapped"], tv
    assert "2-D mixture" in tiny.table and "stranded between modes" in tiny.table


def test_trajectories_recorded_for_every_plotted_method(tiny):
    for method in demo.PLOTTED:
        path = tiny.one_d.paths[method]
        assert path.shape == (21, 400, 1)  # the latent at each of 20 steps' start, then the result


def test_cli_rejects_unknown_sampler(capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--samplers", "Euler,Nope", "--out", "unused"])
    assert exit_info.value.code == 2
    assert "Nope" in capsys.readouterr().err
