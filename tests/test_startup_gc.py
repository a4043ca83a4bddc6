"""The collector paused for the start (as ``tracktui ROOT`` does) is resumed by the app."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import table_of, wait_for, write_run

from tui.app.app import TrackApp


@pytest.fixture
def paused_collector() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()  # the objects the app froze go back to the oldest generation
        gc.enable()


@pytest.mark.usefixtures("paused_collector")
async def test_collection_resumes_once_the_table_is_drawn(tmp_path: Path) -> None:
    write_run(tmp_path, "alpha", [1.0, 0.5])
    app = TrackApp(tmp_path, watch="poll", resume_gc=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: len(table_of(app).shown) == 1)
        await wait_for(pilot, gc.isenabled)
        assert gc.get_freeze_count() > 0  # the start's objects are out of later collections


@pytest.mark.usefixtures("paused_collector")
async def test_collection_resumes_with_no_run_to_draw(tmp_path: Path) -> None:
    app = TrackApp(tmp_path, watch="poll", resume_gc=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, gc.isenabled)


async def test_an_app_not_told_leaves_the_collector_alone(tmp_path: Path) -> None:
    write_run(tmp_path, "alpha", [1.0, 0.5])
    app = TrackApp(tmp_path, watch="poll")
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: len(table_of(app).shown) == 1)
        assert gc.isenabled() and gc.get_freeze_count() == 0


def test_numpy_loads_with_one_blas_thread_and_leaves_the_environment_as_it_was() -> None:
    """The start loads numpy without OpenBLAS's thread per core; the variable that asks for
    that is gone afterwards, so what the user launches later gets their own environment."""
    probe = (
        "import os, sys\n"
        "from tui.cli import load_numpy\n"
        "load_numpy()\n"
        "print('numpy' in sys.modules, len(os.listdir('/proc/self/task')),"
        " os.environ.get('OPENBLAS_NUM_THREADS'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "1", "None"]  # loaded, one thread, no variable
