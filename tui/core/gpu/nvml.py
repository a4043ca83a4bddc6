"""The NVIDIA driver's view of the GPUs through NVML (nvidia-ml-py, imported when first read).

Without nvidia-ml-py, without a driver or without a GPU, the first :meth:`NvmlProvider.read`
finds out, keeps the reason, and every later read returns it at once: a box with no GPU
pays for one failed library load, once.

What is read per device: name, UUID, memory used and total, utilisation, temperature,
power and its limit; the compute and graphics processes with the memory each holds; and,
where the driver keeps them, per-process SM utilisation samples since the previous read.
A field the device does not support is ``None``; one device failing (a GPU that fell off
the bus) does not hide the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from tui.core.gpu.reading import GpuDevice, GpuProcess, GpuProvider, GpuReading, ProcessKind
from tui.core.sanitize import sanitize

SAMPLE_WINDOW = 3.0
"""Seconds of per-process samples the first read of a device looks back over."""

NO_LIBRARY = "nvidia-ml-py is not installed (pip install nvidia-ml-py)"


def _load() -> Any:
    """nvidia-ml-py's module; it opens the driver's library only in ``nvmlInit``."""
    import pynvml  # type: ignore[import-untyped]  # nvidia-ml-py ships no type information

    return pynvml


def _text(value: object) -> str:
    if isinstance(value, bytes):  # older nvidia-ml-py returns bytes
        value = value.decode("utf-8", "replace")
    return sanitize(str(value), 100)


class NvmlProvider(GpuProvider):
    """Reads the GPUs through NVML; thread-safe.

    Args:
        load: returns the ``pynvml`` module (tests pass a stand-in to reach the failure
            paths; the default imports nvidia-ml-py).
    """

    def __init__(self, load: Callable[[], Any] = _load) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._nvml: Any = None
        self._note: str | None = None
        self._handles: list[tuple[int, Any]] = []
        self._driver: str | None = None
        self._seen: dict[int, int] = {}  # device index -> newest sample timestamp (us)

    @property
    def note(self) -> str | None:
        """Why there is nothing to read (set by the first read), else ``None``."""
        return self._note

    def read(self) -> GpuReading:
        with self._lock:
            now = time.time()
            if self._nvml is None and self._note is None:
                self._start()
            if self._nvml is None:
                return GpuReading(now, note=self._note)
            devices: list[GpuDevice] = []
            processes: list[GpuProcess] = []
            for index, handle in self._handles:
                device, found = self._device(index, handle, now)
                devices.append(device)
                processes.extend(found)
            return GpuReading(now, tuple(devices), tuple(processes), self._driver)

    def close(self) -> None:
        with self._lock:
            if self._nvml is not None:
                try:
                    self._nvml.nvmlShutdown()
                except Exception:  # shutting down: nothing to tell anyone
                    pass
            self._nvml = None
            self._note = self._note or "closed"

    # Set-up -------------------------------------------------------------------------------
    def _start(self) -> None:
        try:
            nvml = self._load()
        except ImportError:
            self._note = NO_LIBRARY
            return
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            self._note = self._why(nvml, error)
            return
        except OSError as error:  # a broken library file
            self._note = sanitize(f"NVML could not be loaded: {error}", 300)
            return
        try:
            count = nvml.nvmlDeviceGetCount()
            self._handles = [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        except nvml.NVMLError as error:
            self._note = sanitize(f"NVML: {error}", 300)
            return
        if not self._handles:
            self._note = "no NVIDIA GPU found (the driver reports none)"
            return
        try:
            self._driver = _text(nvml.nvmlSystemGetDriverVersion())
        except nvml.NVMLError:
            self._driver = None
        self._nvml = nvml

    @staticmethod
    def _why(nvml: Any, error: Exception) -> str:
        if isinstance(error, nvml.NVMLError_LibraryNotFound):
            return "no NVIDIA driver (the NVML library libnvidia-ml.so.1 was not found)"
        if isinstance(error, nvml.NVMLError_DriverNotLoaded):
            return "the NVIDIA driver is not loaded"
        if isinstance(error, nvml.NVMLError_NoPermission):
            return "no permission to query the NVIDIA driver"
        return sanitize(f"NVML could not start: {error}", 300)

    # Reading ------------------------------------------------------------------------------
    def _optional(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except self._nvml.NVMLError:
            return None

    def _device(self, index: int, handle: Any, now: float) -> tuple[GpuDevice, list[GpuProcess]]:
        nvml = self._nvml
        name = self._optional(lambda: nvml.nvmlDeviceGetName(handle))
        uuid = self._optional(lambda: nvml.nvmlDeviceGetUUID(handle))
        memory = self._optional(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        rates = self._optional(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        temperature = self._optional(
            lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
        )
        power = self._optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        limit = self._optional(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        samples = self._samples(index, handle, now)
        processes = self._processes(index, handle, samples)
        device = GpuDevice(
            index=index,
            name=_text(name) if name is not None else f"GPU {index}",
            uuid=_text(uuid) if uuid is not None else "",
            memory_used=int(memory.used) if memory is not None else 0,
            memory_total=int(memory.total) if memory is not None else 0,
            utilization=float(rates.gpu) if rates is not None else None,
            temperature=float(temperature) if temperature is not None else None,
            power=power / 1000.0 if power is not None else None,
            power_limit=limit / 1000.0 if limit is not None else None,
            process_samples=samples is not None,
        )
        return device, processes

    def _samples(self, index: int, handle: Any, now: float) -> dict[int, float] | None:
        """Mean SM utilisation per pid since the previous read; ``None`` when unsupported."""
        nvml = self._nvml
        since = self._seen.get(index, int((now - SAMPLE_WINDOW) * 1e6))
        try:
            found = nvml.nvmlDeviceGetProcessUtilization(handle, since)
        except nvml.NVMLError as error:
            # NOT_FOUND, or "success" with no buffer filled: no samples, no busy process.
            if isinstance(error, nvml.NVMLError_NotFound) or error.value == nvml.NVML_SUCCESS:
                return {}
            return None
        sums: dict[int, tuple[float, int]] = {}
        newest = since
        for sample in found:
            stamp = int(sample.timeStamp)
            if stamp <= since:
                continue
            newest = max(newest, stamp)
            total, count = sums.get(int(sample.pid), (0.0, 0))
            sums[int(sample.pid)] = (total + float(sample.smUtil), count + 1)
        self._seen[index] = newest
        return {pid: total / count for pid, (total, count) in sums.items()}

    def _processes(
        self, index: int, handle: Any, samples: dict[int, float] | None
    ) -> list[GpuProcess]:
        nvml = self._nvml
        found: dict[int, tuple[int | None, set[str]]] = {}
        lists: tuple[tuple[str, Callable[[Any], Any]], ...] = (
            ("compute", nvml.nvmlDeviceGetComputeRunningProcesses),
            ("graphics", nvml.nvmlDeviceGetGraphicsRunningProcesses),
        )
        for name, call in lists:
            for item in self._optional(partial(call, handle)) or ():
                pid = int(item.pid)
                used = item.usedGpuMemory
                memory, kinds = found.get(pid, (None, set()))
                if used is not None:
                    memory = max(memory or 0, int(used))
                kinds.add(name)
                found[pid] = (memory, kinds)
        out = []
        for pid, (memory, kinds) in sorted(found.items()):
            kind: ProcessKind = "compute+graphics" if len(kinds) == 2 else "compute"
            if kinds == {"graphics"}:
                kind = "graphics"
            sm = None if samples is None else samples.get(pid, 0.0)
            out.append(GpuProcess(pid, index, memory, kind, sm))
        return out
