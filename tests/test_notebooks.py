"""Every notebook in notebooks/ is stored without outputs and runs top to bottom (nbclient),
and every cell that draws a figure shows it inline (an image/png output per figure).

The default suite executes the quickstart (a smoke run of the kernel, the simulator, the
result folder and the plots), the stored-sweep notebook (no simulation) and a fast variant
of the incentives notebook (its ``parameters`` cell overridden with fewer designs and runs);
``-m slow`` executes every notebook as shipped, with larger swarms and, for
simulator_vs_live, real libtorrent sessions.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
SMOKE = "quickstart"
#: run as shipped in the default suite (each under ~10 s on 2 cores)
FAST = {SMOKE, "designs_from_a_sweep"}
#: notebooks whose ``parameters`` cell the fast variant overrides (the full run is slow)
SMALLER = {
    "incentives": 'DESIGNS = ["none", "pay_per_piece"]\nREPLICATIONS = 2',
}
#: a call that makes a figure: each must leave one image in its cell's outputs
FIGURE_CALL = re.compile(r"\bplots\.(?:figure|overview|grid_figure|new_figure)\(|plt\.subplots?\(")


def execute(path: Path, override: str | None = None) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    if override is not None:
        k = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        nb.cells.insert(k + 1, nbformat.v4.new_code_cell(override))
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


def check_outputs(nb: nbformat.NotebookNode, name: str) -> None:
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors, f"{name}: {[e.get('evalue') for e in errors]}"
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        figures = len(FIGURE_CALL.findall(cell.source))
        images = sum("image/png" in o.get("data", {}) for o in cell.outputs)
        assert images >= figures, f"{name} cell {k}: {figures} figure(s), {images} image(s) shown"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


@pytest.mark.parametrize(
    "path",
    [p if p.stem in FAST else pytest.param(p, marks=pytest.mark.slow) for p in NOTEBOOKS],
    ids=[p.stem for p in NOTEBOOKS],
)
def test_notebook_runs_and_shows_its_figures(path):
    check_outputs(execute(path), path.name)


@pytest.mark.parametrize("stem", sorted(SMALLER))
def test_notebook_runs_on_smaller_settings(stem):
    path = next(p for p in NOTEBOOKS if p.stem == stem)
    check_outputs(execute(path, SMALLER[stem]), f"{path.name} (smaller)")


def test_every_notebook_with_figures_draws_one_and_the_fast_ones_exist():
    stems = {p.stem for p in NOTEBOOKS}
    assert stems >= FAST | set(SMALLER)
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        if "plots" in "".join(c.source for c in nb.cells):
            assert any(FIGURE_CALL.search(c.source) for c in nb.cells), path.name
