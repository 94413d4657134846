"""Executing a notebook never hangs: no widget starts without a person's frontend, and every
execution the course runs has a per-cell limit.

nbclient answers an ``ipywidgets.interact``'s Output widget on the kernel's shell socket while
it waits on that socket for the cell's reply; that reply was then sometimes seen only when the
cell's time limit ran out (notebook 04 stalled under ``jupyter nbconvert --execute`` and
``utils.grade``). The notebooks call ``utils.plotting.interact``, which starts sliders only where
the execute request allows stdin, as JupyterLab's do and batch executors' do not.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from utils import plotting, runtime

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
BATCH_LINE = plotting.NO_SLIDERS
CODE = ("from utils.plotting import interact\n"
        "interact(lambda a: print('drawn', a), a=(1, 0, 3))")


def run_in_kernel(code: str, allow_stdin: bool) -> list[dict]:
    """The IOPub messages of one execute request (until the kernel is idle again)."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    try:
        msg_id = kc.execute(code, allow_stdin=allow_stdin)
        reply = kc.get_shell_msg(timeout=60)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "ok", reply["content"]
        messages = []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return messages
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def printed(messages: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")


def test_sliders_start_for_a_person_s_frontend_and_not_for_a_batch_run():
    live = run_in_kernel(CODE, allow_stdin=True)           # as JupyterLab sends it
    batch = run_in_kernel(CODE, allow_stdin=False)         # as nbclient, nbval, nbgrader send it
    opened = [m for m in live if m["msg_type"] == "comm_open"]
    assert opened and all(m["content"]["target_name"] == "jupyter.widget" for m in opened)
    assert any(WIDGET_VIEW in m["content"].get("data", {}) for m in live
               if m["msg_type"] == "display_data")
    assert "drawn 1" in printed(live) and BATCH_LINE not in printed(live)
    assert not [m for m in batch if m["msg_type"].startswith("comm")]
    assert BATCH_LINE in printed(batch) and "drawn" not in printed(batch)
    assert not [m for m in live + batch if m["msg_type"] == "execute_result"]
    assert "call <lambda>(a) yourself" in printed(batch)


def test_grading_mode_starts_no_sliders_even_for_a_person(monkeypatch):
    monkeypatch.setenv("ACV_GRADING", "1")
    assert runtime.live_frontend() is False
    monkeypatch.delenv("ACV_GRADING")
    assert runtime.live_frontend() is False               # plain Python: no kernel at all


@pytest.mark.parametrize("sliders, fixed, expected", [
    ({"row": (5, 0)}, None, "slider 'row' must be (start, low, high)"),
    ({"row": (9, 0, 4)}, None, "low <= start <= high"),
    ({"row": (1.5, 0, 4)}, None, "three integers"),
    ({"row": (True, 0, 4)}, None, "three integers"),
    ({"row": (1, 0, 4)}, {"row": 2}, "both as sliders and in fixed"),
])
def test_interact_rejects_bad_controls_before_any_work(sliders, fixed, expected, capsys):
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        plotting.interact(lambda row: row, fixed=fixed, **sliders)
    with pytest.raises(ValueError, match="function must be callable"):
        plotting.interact("photo_attention", row=(1, 0, 4))
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name", ["04_non_local.ipynb", "06_video_attention.ipynb"])
def test_notebooks_with_sliders_run_through_nbconvert_without_a_stall(name, tmp_path):
    """Fast mode, as an instructor runs nbconvert: a stall would run into the 120 s cell limit
    and fail the run; no widget may start, and the slider cells print the batch line."""
    env = dict(os.environ, ACV_FAST="1", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("ACV_GRADING", None)
    done = subprocess.run(
        [str(BIN / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=120", "--output-dir", str(tmp_path),
         str(ROOT / "solutions" / name)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = json.loads((tmp_path / name).read_text())
    assert "widgets" not in executed["metadata"]
    slider_cells = [c for c in executed["cells"] if c["cell_type"] == "code"
                    and "interact(" in "".join(c["source"])]
    assert slider_cells, f"{name} has no cell that calls interact"
    for cell in slider_cells:
        assert not any(WIDGET_VIEW in o.get("data", {}) for o in cell["outputs"])
        assert BATCH_LINE in "".join("".join(o.get("text", "")) for o in cell["outputs"])


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_execute_stops_a_stuck_cell_and_leaves_the_notebook_as_it_was(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("print('first')"),
                nbformat.v4.new_code_cell("import time\ntime.sleep(600)")]
    path = tmp_path / "stuck.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    stamp = tmp_path / "installed"
    stamp.touch()                        # stands for .venv/.installed: nothing is reinstalled
    done = subprocess.run(
        ["make", "-s", "execute", f"STAMP={stamp}", f"BIN={BIN}", f"NOTEBOOKS={path}",
         "CELL_TIMEOUT=3"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "timed out while it was being executed, after 3 seconds" in out
    assert "time.sleep(600)" in out                            # which cell
    assert f"make execute: {path} stopped" in out
    assert path.read_bytes() == before
