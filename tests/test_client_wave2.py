"""The client's Azure ML / Picsellia-style calls, read back as a user would see them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load

from tui.core.shapes import Table

SCRIPT = """
import sys
import tui
run = tui.init(root=sys.argv[1], name="azure", config={"lr": 0.1})
run.log_list("per_class_recall", [0.5, 0.75, 1.0], step=0)
for epoch in range(3):
    run.log_row("curve", step=epoch, epoch=epoch, loss=1.0 / (epoch + 1))
run.log_table("summary", {"class": ["cat", "dog"], "f1": [0.9, 0.8]})
image = run.log_image("samples/grid", sys.argv[2], step=7)
uploaded = run.upload_file(sys.argv[3])
run.set_property("dataset", "mnist")
run.set_property("dataset", "mnist")
try:
    run.set_property("dataset", "cifar")
except ValueError as error:
    print("refused:", error)
run.tag("stage", "a")
run.tag("stage", "b")
run.finish()
print(image.name, uploaded.name)
"""

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a3e0b7ad0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("client")
    (base / "grid.png").write_bytes(PNG)
    (base / "model.txt").write_text("Linear(784, 10)\n")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(base / "runs"),
            str(base / "grid.png"),
            str(base / "model.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return base / "runs", done.stdout


def test_client_calls_land_in_the_run(logged: tuple[Path, str]) -> None:
    root, stdout = logged
    assert "refused: property 'dataset' is already 'mnist'" in stdout
    assert stdout.split()[-2:] == ["samples_grid_step7.png", "model.txt"]
    (run,) = load(root)
    assert run.latest("per_class_recall") == (0.5, 0.75, 1.0)
    curve = run.latest("curve")
    assert isinstance(curve, Table) and curve.columns == ("epoch", "loss")
    assert curve.rows == ((0.0, 1.0), (1.0, 0.5), (2.0, 1.0 / 3))
    assert run.latest("samples/grid") == "media/samples_grid_step7.png"
    assert sorted(run.media) == ["model.txt", "samples_grid_step7.png"]
    assert (root / run.path / "media" / "samples_grid_step7.png").read_bytes() == PNG
    assert run.properties["dataset"] == "mnist"
    assert run.tags == {"stage": "b"}


def test_client_calls_in_status_json(logged: tuple[Path, str]) -> None:
    root, _ = logged
    done = subprocess.run(
        [sys.executable, "-m", "tui", "status", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["status"] == "finished"
    assert run["properties"]["dataset"] == "mnist" and run["tags"] == {"stage": "b"}
    assert run["texts"]["samples/grid"] == "media/samples_grid_step7.png"
    assert run["config"] == {"lr": 0.1}
