"""Readers for every run format tracktui understands, and the registry of their adapters.

Each format is one module with an :class:`~tui.core.formats.base.Adapter` that finds its
runs and a :class:`~tui.core.formats.base.Source` that reads one run incrementally. Helpers
the readers share live in ``files`` (safe, bounded file access), ``documents`` (YAML and
JSON) and ``meta`` (the last step of run metadata).

:data:`ADAPTERS` is the discovery order, which matters where one directory could match
several formats: MLflow claims whole stores (and prunes), NePS claims its search tree,
Gymnos claims execution directories, then TensorBoard event directories and CSV logs; the
native run directory and Valohai-style logs come last. Foreign adapters only ever read.
"""

from __future__ import annotations

from tui.core.formats.base import Adapter
from tui.core.formats.csvlog import CsvAdapter
from tui.core.formats.gymnos import GymnosAdapter
from tui.core.formats.mlflow import MlflowAdapter
from tui.core.formats.native import NativeAdapter
from tui.core.formats.neps import NepsAdapter
from tui.core.formats.tensorboard import TensorBoardAdapter
from tui.core.formats.valohai import ValohaiAdapter

ADAPTERS: tuple[type[Adapter], ...] = (
    MlflowAdapter,
    NepsAdapter,
    GymnosAdapter,
    TensorBoardAdapter,
    CsvAdapter,
    NativeAdapter,
    ValohaiAdapter,
)
"""Every adapter class, in the order the discovery walk consults them."""


def default_adapters() -> list[Adapter]:
    """A fresh instance of every adapter, in discovery order."""
    return [adapter() for adapter in ADAPTERS]
