"""GPU figures as ``tracktui status --json`` writes them (DESIGN.md §8, README).

Top level: ``"gpus"``, one object per device with its processes (each naming the runs it
belongs to, by path, or none), and ``"gpu_note"`` when there is no GPU or GPU use per run
is unavailable. Per run: ``"gpu"`` (:func:`run_gpu`), ``null`` when the run has no known
alive process or no GPU was read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from tui.core.gpu.attribution import GpuUse, HostGpu


def run_gpu(use: GpuUse | None) -> dict[str, Any] | None:
    """A run's ``"gpu"`` object: bytes and utilisation over its process tree, per device."""
    if use is None:
        return None
    return {
        "memory_bytes": use.memory,
        "utilization": use.utilization,
        "devices": [
            {"index": d.index, "memory_bytes": d.memory, "utilization": d.utilization}
            for d in use.devices
        ],
        "pids": sorted({p.pid for p in use.processes}),
    }


def host_gpus(host: HostGpu | None, summaries: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The top-level ``"gpus"`` list (and ``"gpu_note"`` when it applies).

    Args:
        host: what :func:`tui.core.gpu.attribution.look` found (``None``: not looked).
        summaries: the runs' summaries; their ``gpu.pids`` name each process's runs.
    """
    if host is None:
        return {"gpus": [], "gpu_note": "the GPUs were not read"}
    runs_of: dict[int, list[str]] = {}
    for summary in summaries:
        gpu = summary.get("gpu")
        if gpu:
            for pid in gpu["pids"]:
                runs_of.setdefault(pid, []).append(summary["path"])
    reading = host.reading
    me = os.getuid()
    devices = []
    for device in reading.devices:
        processes = []
        for process in reading.processes:
            if process.device != device.index:
                continue
            owner = host.owners.get(process.pid)
            processes.append(
                {
                    "pid": process.pid,
                    "kind": process.kind,
                    "memory_bytes": process.memory,
                    "sm_utilization": process.sm_utilization,
                    "user": owner.user if owner is not None else None,
                    "ours": owner is not None and owner.uid == me,
                    "command": owner.command if owner is not None else None,
                    "runs": sorted(runs_of.get(process.pid, [])),
                }
            )
        devices.append(
            {
                "index": device.index,
                "name": device.name,
                "uuid": device.uuid,
                "memory_used_bytes": device.memory_used,
                "memory_total_bytes": device.memory_total,
                "utilization": device.utilization,
                "temperature_c": device.temperature,
                "power_w": device.power,
                "power_limit_w": device.power_limit,
                "processes": processes,
            }
        )
    out: dict[str, Any] = {"gpus": devices}
    note = reading.note if not reading.available else host.note
    if note is not None:
        out["gpu_note"] = note
    return out
