"""GPU and machine telemetry: which run holds which GPU, how hard it works, and its history.

* :mod:`~tui.core.gpu.reading`: what a look at the GPUs returns, and the provider interface.
* :mod:`~tui.core.gpu.nvml`: the provider that asks the NVIDIA driver (nvidia-ml-py).
* :mod:`~tui.core.gpu.attribution`: GPU processes joined to runs through their process trees.
* :mod:`~tui.core.gpu.sampler`: samples of a run's CPU, memory, IO and GPU; ``system.jsonl``.
* :mod:`~tui.core.gpu.history`: a run's samples as a run of its own, for the charts.
* :mod:`~tui.core.gpu.report`: the JSON of ``tracktui status --json``.

Nothing here loads the NVIDIA library until a provider is first read.
"""

from __future__ import annotations

from tui.core.gpu.attribution import (
    DeviceUse,
    GpuState,
    GpuUse,
    Holder,
    HostGpu,
    Identity,
    attribute,
    identities,
    look,
)
from tui.core.gpu.nvml import NvmlProvider
from tui.core.gpu.reading import (
    GPU_INTERVAL,
    FixedProvider,
    GpuDevice,
    GpuProcess,
    GpuProvider,
    GpuReading,
)

__all__ = [
    "GPU_INTERVAL",
    "DeviceUse",
    "FixedProvider",
    "GpuDevice",
    "GpuProcess",
    "GpuProvider",
    "GpuReading",
    "GpuState",
    "GpuUse",
    "Holder",
    "HostGpu",
    "Identity",
    "NvmlProvider",
    "attribute",
    "identities",
    "look",
]
