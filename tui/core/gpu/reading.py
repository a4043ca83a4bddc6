"""What one look at the host's GPUs saw, and the interface of whatever looks.

A :class:`GpuProvider` returns a :class:`GpuReading`: the devices and every process on them,
frozen. The real one is :class:`tui.core.gpu.nvml.NvmlProvider`; tests and benchmarks pass
their own (a provider is the only seam: attribution, columns, rules and history run on
whatever it reports).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

ProcessKind = Literal["compute", "graphics", "compute+graphics"]

GPU_INTERVAL = 2.0
"""Seconds between two GPU readings while something wants them (the app, watch)."""


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One GPU as the driver reports it.

    Attributes:
        index: the driver's index (``nvidia-smi``'s ``GPU`` column).
        name: the product name (sanitized).
        uuid: the device's UUID (``GPU-...``), or ``""`` when not given.
        memory_used: bytes of device memory in use (all processes and the driver).
        memory_total: bytes of device memory.
        utilization: percent of the last sample period a kernel ran, or ``None``.
        temperature: degrees Celsius, or ``None``.
        power: watts drawn, or ``None``.
        power_limit: the enforced power limit in watts, or ``None``.
        process_samples: the driver gives per-process SM utilisation samples for this
            device (then a process absent from the samples used none).
    """

    index: int
    name: str
    uuid: str = ""
    memory_used: int = 0
    memory_total: int = 0
    utilization: float | None = None
    temperature: float | None = None
    power: float | None = None
    power_limit: float | None = None
    process_samples: bool = False


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """One process on one GPU.

    Attributes:
        pid: the pid as the driver reports it (the driver's pid namespace).
        device: index of the GPU.
        memory: bytes of device memory the process holds, or ``None`` when the driver
            does not say.
        kind: a compute context, a graphics one, or both.
        sm_utilization: mean percent of the GPU's SMs the process kept busy since the
            previous reading (``None`` without per-process samples).
    """

    pid: int
    device: int
    memory: int | None = None
    kind: ProcessKind = "compute"
    sm_utilization: float | None = None


@dataclass(frozen=True, slots=True)
class GpuReading:
    """Everything one look saw.

    Attributes:
        time: wall time of the reading (epoch seconds).
        devices: the GPUs, by index.
        processes: every process on every GPU.
        driver: the driver's version, when known.
        note: why there are no devices (no driver, no GPU, no permission), else ``None``.
    """

    time: float
    devices: tuple[GpuDevice, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    driver: str | None = None
    note: str | None = None

    @property
    def available(self) -> bool:
        """True when at least one GPU was read."""
        return bool(self.devices)

    def device(self, index: int) -> GpuDevice | None:
        """The GPU with driver index ``index``."""
        for device in self.devices:
            if device.index == index:
                return device
        return None


class GpuProvider(abc.ABC):
    """Reads the host's GPUs. Safe to call from any one thread at a time, or several."""

    @abc.abstractmethod
    def read(self) -> GpuReading:
        """Look at the GPUs now. Never raises: trouble becomes the reading's ``note``."""

    def close(self) -> None:
        """Release the driver (no-op by default)."""


class FixedProvider(GpuProvider):
    """Reports the devices and processes it is given: the seam NVML sits behind, for tests,
    benchmarks and demos (everything after the provider runs for real on what it reports).

    Args:
        devices: the GPUs (none: the reading's ``note`` says why).
        processes: the processes on them.
        note: why there are no devices.
        clock: the readings' wall clock.
        driver: the driver version to report.
    """

    def __init__(
        self,
        devices: tuple[GpuDevice, ...] = (),
        processes: tuple[GpuProcess, ...] = (),
        note: str | None = None,
        clock: Callable[[], float] = time.time,
        driver: str | None = None,
    ) -> None:
        self.devices = devices
        self.processes = processes
        self.note = note
        self.clock = clock
        self.driver = driver
        self.reads = 0

    def read(self) -> GpuReading:
        self.reads += 1
        note = None if self.devices else (self.note or "no GPU")
        return GpuReading(self.clock(), self.devices, self.processes, self.driver, note)
