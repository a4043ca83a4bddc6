"""Readers for every run format tracktui understands, and the registry of their adapters.

Each format is one module with an :class:`~tui.core.formats.base.Adapter` that finds its
runs and a :class:`~tui.core.formats.base.Source` that reads one run incrementally. Helpers
the readers share live in ``files`` (safe, bounded file access), ``documents`` (YAML and
JSON) and ``meta`` (the last step of run metadata).

:data:`ADAPTERS` is the discovery order, which matters where one directory could match
several formats: MLflow claims whole stores (and prunes), NePS claims its search tree,
Gymnos claims execution directories; W&B run folders (listed from the folder holding
``wandb/``; a W&B folder the walk reaches is claimed whole, so wandb's JSON-lines debug
logs are never Valohai runs), Hugging Face Trainer output directories (before TensorBoard: their ``runs/``
events belong to them), Sacred run folders (before the native format: both have a
``run.json``) and DVCLive directories; then TensorBoard event directories and CSV logs;
the native run directory and Valohai-style logs come last. Foreign adapters only ever read.
"""

from __future__ import annotations

from tui.core.formats.base import Adapter
from tui.core.formats.csvlog import CsvAdapter
from tui.core.formats.dvclive import DvcliveAdapter
from tui.core.formats.gymnos import GymnosAdapter
from tui.core.formats.huggingface import TrainerAdapter
from tui.core.formats.mlflow import MlflowAdapter
from tui.core.formats.native import NativeAdapter
from tui.core.formats.neps import NepsAdapter
from tui.core.formats.sacred import SacredAdapter
from tui.core.formats.tensorboard import TensorBoardAdapter
from tui.core.formats.valohai import ValohaiAdapter
from tui.core.formats.wandb import WandbAdapter

ADAPTERS: tuple[type[Adapter], ...] = (
    MlflowAdapter,
    NepsAdapter,
    GymnosAdapter,
    WandbAdapter,
    TrainerAdapter,
    SacredAdapter,
    DvcliveAdapter,
    TensorBoardAdapter,
    CsvAdapter,
    NativeAdapter,
    ValohaiAdapter,
)
"""Every adapter class, in the order the discovery walk consults them."""


def default_adapters() -> list[Adapter]:
    """A fresh instance of every adapter, in discovery order."""
    return [adapter() for adapter in ADAPTERS]
