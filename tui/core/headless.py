"""``tracktui status``: every run under ROOT summarised as JSON, CSV or rows (DESIGN.md §8).

Runs are read in full, in worker processes when there are many (parsing is CPU-bound and
the GIL would hold one core). Each worker reads its share of runs into its own store and
returns finished summaries; only a cross-run rule (worse_than_median) needs the series
themselves back in the parent.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tui.core.engine import Engine
from tui.core.evidence import Evidence, EvidenceGatherer
from tui.core.formats.base import Source
from tui.core.gpu.attribution import HostGpu, attribute, identities
from tui.core.gpu.report import run_gpu
from tui.core.query import parse_query
from tui.core.rules import RuleEngine, Verdict, load_rules
from tui.core.shapes import describe
from tui.core.status import ENDED_BY_EVIDENCE, derive_status, last_activity
from tui.core.store import Run, RunStore
from tui.core.summary import flatten
from tui.core.timefmt import as_utc_iso
from tui.core.values import real_number

ONE_SHOT = "none (one-shot read)"
"""What ``health.watcher`` says in headless output: files were read once, not watched."""

PARALLEL_BYTES = 32 * 1024 * 1024
"""Below this much data the runs are read in this process (no pool start-up cost)."""


def jsonable(value: Any) -> Any:
    """Replace non-finite floats with ``"nan"``/``"inf"``/``"-inf"`` (the JSON contract)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _number(value: float | None) -> float | int | None:
    if value is None:
        return None
    if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
        return int(value)
    return value


def metric_summary(run: Run) -> dict[str, dict[str, Any]]:
    """Per metric: last, min and max with their steps, counts, first non-finite step."""
    out: dict[str, dict[str, Any]] = {}
    for name, s in sorted(run.series.items()):
        has_min = s.min_step is not None
        out[name] = {
            "last": s.last,
            "last_step": _number(s.last_step),
            "min": s.min if has_min else None,
            "min_step": _number(s.min_step),
            "max": s.max if s.max_step is not None else None,
            "max_step": _number(s.max_step),
            "count": s.count,
            "nonfinite": s.nonfinite,
            "first_nonfinite_step": _number(s.first_nonfinite_step),
        }
    return out


def _text(value: object) -> str:
    return value if isinstance(value, str) else describe(value)


def summarize(
    run: Run, verdicts: Iterable[Verdict] = (), watcher: str | None = None
) -> dict[str, Any]:
    """The JSON object for one run (DESIGN.md §8); non-finite numbers not yet replaced.

    Times are rewritten into tracktui's one spelling, whatever the run wrote.
    """
    meta = run.meta
    process = process_of(run)
    started = (
        as_utc_iso(meta.get("created_at"))
        or as_utc_iso(meta.get("started_at"))
        or as_utc_iso(run.first_time)
    )
    ended = as_utc_iso(meta.get("ended_at"))
    if ended is None and run.slurm is not None:
        ended = as_utc_iso(run.slurm.end_time)
    if ended is None and run.status in ENDED_BY_EVIDENCE:
        ended = as_utc_iso(run.stop.time if run.stop is not None else last_activity(run))
    texts = {name: _text(run.latest(name)) for name in sorted(run.objects)}
    health: dict[str, Any] = {"bad_lines": run.health.bad_lines, "notes": list(run.health.notes)}
    if run.health.samples:
        health["examples"] = [
            {"file": f, "line": n, "reason": r} for f, n, r in list(run.health.samples)[:10]
        ]
    if watcher:
        health["watcher"] = watcher
    return {
        "id": str(meta.get("id") or run.key),
        "name": run.name,
        "path": run.path,
        "format": run.format,
        "status": run.status,
        "pid": process["pid"] if process else None,
        "host": meta.get("host"),
        "started_at": started,
        "ended_at": ended,
        "config": run.config,
        "tags": run.tags,
        "properties": run.properties,
        "metrics": metric_summary(run),
        "texts": texts,
        "rules": [
            {"name": v.rule, "state": v.state, "step": _number(v.step), "reason": v.reason}
            for v in verdicts
        ],
        "health": health,
        "process": process,
        "slurm": run.slurm.as_json() if run.slurm is not None else None,
        "gpu": run_gpu(run.gpu),
    }


def process_of(run: Run) -> dict[str, Any] | None:
    """The run's process and how it was known: ``recorded`` in run.json or ``open_file``."""
    meta = run.meta
    pid = meta.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
        created = real_number(meta.get("pid_create_time"))
        return {"pid": pid, "create_time": created, "found": "recorded", "evidence": "run.json"}
    found = run.process
    if found is None:
        return None
    return {
        "pid": found.pid,
        "create_time": found.create_time,
        "found": "open_file",
        "evidence": found.evidence,
        "writers": [w.pid for w in found.writers],
    }


def csv_row(summary: dict[str, Any]) -> dict[str, Any]:
    """One flat CSV row: identity, status, ``config.*`` and ``metric.last/min/max`` columns."""
    row: dict[str, Any] = {
        key: summary[key]
        for key in ("id", "name", "path", "format", "status", "host", "started_at", "ended_at")
    }
    for key, value in flatten(summary["config"]).items():
        row[f"config.{key}"] = value
    for key, value in summary["tags"].items():
        row[f"tag.{key}"] = value
    for name, m in summary["metrics"].items():
        for field in ("last", "min", "max", "last_step", "count"):
            row[f"{name}.{field}"] = m[field]
    for verdict in summary["rules"]:
        row[f"rule.{verdict['name']}"] = verdict["state"]
    row["bad_lines"] = summary["health"]["bad_lines"]
    return row


def _load_rules(path: Path | None) -> RuleEngine | None:
    if path is None:
        return None
    return RuleEngine(load_rules(path))


def _needs_all_series(rules_path: Path | None) -> bool:
    if rules_path is None:
        return False
    return any(rule.when == "worse_than_median" for rule in load_rules(rules_path))


def _read(sources: Sequence[Source], root: Path) -> RunStore:
    engine = Engine(root, adapters=[])
    store = RunStore()
    for source in sources:
        engine.sources[source.key] = source
        for batch in engine.read_all(source.key):
            store.apply(batch)
        source.close()
    return store


def _finish(
    store: RunStore,
    root: Path,
    evidence: Evidence,
    now: float,
    rules_path: Path | None,
    watcher: str,
    query: str | None = None,
    gpu: HostGpu | None = None,
) -> list[dict[str, Any]]:
    evidence.apply(store, root)
    for run in store:
        run.status = derive_status(run, now)
    if gpu is not None:
        attribute(gpu, identities(store, socket.gethostname())).apply(store)
    rules = _load_rules(rules_path)
    verdicts = rules.evaluate(store, None, now) if rules is not None else {}
    matcher = parse_query(query) if query else None
    out = []
    for run in store:
        mine = verdicts.get(run.key, ())
        if matcher is not None:
            triggered = {v.rule for v in mine if v.state == "triggered"}
            if not matcher.matches(run, {"status": run.status, "rules": triggered}):
                continue
        out.append(summarize(run, mine, watcher))
    return out


def _worker(
    sources: Sequence[Source],
    root: Path,
    evidence: Evidence,
    now: float,
    rules_path: Path | None,
    whole: bool,
    query: str | None,
    gpu: HostGpu | None,
) -> list[dict[str, Any]] | RunStore:
    store = _read(sources, root)
    if whole:
        return store
    return _finish(store, root, evidence, now, rules_path, ONE_SHOT, query, gpu)


def collect(
    root: Path,
    rules_path: Path | None = None,
    *,
    query: str | None = None,
    workers: int | None = None,
    now: float | None = None,
    gpu: HostGpu | None = None,
) -> list[dict[str, Any]]:
    """Read every run under ``root`` to its end and return their summaries.

    ``query`` (the filter language of ``tui.core.query``) keeps only matching runs; it is
    parsed before any reading so a bad query fails fast with ``QueryError``. ``gpu`` (a
    look at the GPUs, :func:`tui.core.gpu.look`) gives each alive run its GPU use; without
    it every run's ``gpu`` is ``null``.
    """
    if query:
        parse_query(query)
    engine = Engine(root)
    engine.scan()
    sources = list(engine.sources.values())
    evidence = EvidenceGatherer(engine.root).gather(engine.run_files())
    now = time.time() if now is None else now
    whole = _needs_all_series(rules_path)
    sizes = [s.size() for s in sources]
    count = workers or min(len(sources), os.cpu_count() or 1)
    if count <= 1 or sum(sizes) < PARALLEL_BYTES:
        store = _read(sources, engine.root)
        return _finish(store, engine.root, evidence, now, rules_path, ONE_SHOT, query, gpu)
    # Largest first into the lightest share, so workers finish together.
    shares: list[list[Source]] = [[] for _ in range(count * 4)]
    loads = [0] * len(shares)
    for size, source in sorted(zip(sizes, sources, strict=True), key=lambda p: -p[0]):
        i = loads.index(min(loads))
        shares[i].append(source)
        loads[i] += size
    results: list[dict[str, Any]] = []
    merged = RunStore()
    with ProcessPoolExecutor(max_workers=count) as pool:
        futures = [
            pool.submit(_worker, share, engine.root, evidence, now, rules_path, whole, query, gpu)
            for share in shares
            if share
        ]
        for future in futures:
            part = future.result()
            if isinstance(part, RunStore):
                merged.runs.update(part.runs)
            else:
                results.extend(part)
    if whole:
        return _finish(merged, engine.root, evidence, now, rules_path, ONE_SHOT, query, gpu)
    return results


def _sort_value(summary: dict[str, Any], key: str) -> Any:
    for fn in ("last", "min", "max", "count"):
        if key.startswith(fn + "(") and key.endswith(")"):
            metric = summary["metrics"].get(key[len(fn) + 1 : -1])
            return None if metric is None else metric[fn]
    if key in summary and key not in ("metrics", "config", "tags", "properties"):
        return summary[key]
    if key.startswith("config."):
        return flatten(summary["config"]).get(key[7:])
    metric = summary["metrics"].get(key)
    if metric is not None:
        return metric["last"]
    return flatten(summary["config"]).get(key)


def sort_summaries(summaries: list[dict[str, Any]], spec: str) -> list[dict[str, Any]]:
    """Sort by ``spec`` (``loss``, ``-val_acc``, ``max(val_acc)``, ``config.lr``, ``name``).

    A leading ``-`` (or a ``:desc`` suffix) sorts descending. Missing and non-finite
    values always go last, in their original order, whatever the direction.
    """
    descending = spec.startswith("-") or spec.endswith(":desc")
    key = spec.lstrip("-+").removesuffix(":desc").removesuffix(":asc")
    present: list[tuple[Any, int, dict[str, Any]]] = []
    absent: list[dict[str, Any]] = []
    for i, summary in enumerate(summaries):
        value = _sort_value(summary, key)
        number = real_number(value)
        if number is not None:
            present.append(((0, number), i, summary))
        elif value is None or isinstance(value, float):  # missing, NaN or infinite
            absent.append(summary)
        else:
            present.append(((1, str(value).lower()), i, summary))
    present.sort(key=lambda item: item[0], reverse=descending)
    return [s for _, _, s in present] + absent
