"""``tracktui status ROOT``: the headless view, as JSON, CSV or a Rich table."""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from tui.commands.watch import LineWriter, json_line
from tui.core.follow import (
    Follower,
    Notice,
    RulesReloaded,
    RunChanged,
    RunRef,
    VerdictChanged,
    stopped_by_signals,
)
from tui.core.gpu import HostGpu, NvmlProvider, look
from tui.core.gpu.report import host_gpus
from tui.core.headless import _number, collect, csv_row, jsonable, sort_summaries
from tui.core.query import Query, QueryError, parse_query
from tui.core.rules import RULES_FILE, RulesError, RulesFile, find_rules
from tui.core.sanitize import escape_path, sanitize
from tui.core.shapes import format_number
from tui.core.status import RunStatus
from tui.core.store import Run
from tui.core.summary import key_metrics
from tui.core.timefmt import utc_iso

STATUS_STYLE: dict[RunStatus, str] = {
    "running": "green",
    "stalled": "yellow",
    "pending": "cyan",
    "finished": "blue",
    "failed": "red",
    "killed": "magenta",
    "crashed": "red",
    "unknown": "dim",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tracktui status``."""
    parser.add_argument("root", type=Path, help="directory holding the runs")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object (DESIGN.md §8)")
    out.add_argument("--csv", action="store_true", help="one row per run")
    parser.add_argument(
        "--sort",
        metavar="KEY",
        help="name, status, a metric (last value), "
        "min(m)/max(m), config.x; KEY:desc or --sort=-KEY for descending",
    )
    parser.add_argument("--filter", metavar="EXPR", help="query, e.g. 'lr<0.01 status:running'")
    parser.add_argument(
        "--rules", type=Path, metavar="FILE", help="rules file (default ROOT/tracktui.toml)"
    )
    parser.add_argument(
        "--follow",
        action="store_true",
        help="refresh the table every 2 s; with --json or stdout not a terminal, one JSON "
        "line per change",
    )
    parser.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)


def _rules_path(args: argparse.Namespace) -> Path | None:
    return find_rules(args.root, args.rules)


def gather(args: argparse.Namespace, gpu: HostGpu | None = None) -> list[dict[str, Any]]:
    """Summaries of the runs, filtered and sorted as asked (``gpu``: a look at the GPUs)."""
    summaries = collect(
        args.root, _rules_path(args), query=args.filter, workers=args.workers, gpu=gpu
    )
    summaries.sort(key=lambda s: s["path"])
    if args.sort:
        summaries = sort_summaries(summaries, args.sort)
    return summaries


def to_json(root: Path, summaries: list[dict[str, Any]], gpu: HostGpu | None = None) -> bytes:
    """The ``--json`` document (``gpu``: the look at the GPUs the summaries were made with)."""
    document = {"root": escape_path(str(root)), "runs": jsonable(summaries)}
    document.update(jsonable(host_gpus(gpu, summaries)))
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def to_csv(summaries: list[dict[str, Any]]) -> str:
    """The ``--csv`` document: union of columns, in first-seen order."""
    rows = [jsonable(csv_row(s)) for s in summaries]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def render_table(root: Path, summaries: list[dict[str, Any]], width: int = 200) -> Any:
    """A Rich table of the runs (every run string is a ``Text``, never markup).

    Columns are added by importance while they fit in ``width``: status, name, step, the
    key metrics, rules, bad lines, format.
    """
    from rich.table import Table
    from rich.text import Text

    metrics = key_metrics((s["metrics"] for s in summaries), limit=3)
    cells: dict[str, list[Text]] = {
        "status": [],
        "name": [],
        "step": [],
        "rules": [],
        "bad": [],
        "format": [],
    }
    for name in metrics:
        cells[name] = []
    for s in summaries:
        step = max(
            (m["last_step"] for m in s["metrics"].values() if m["last_step"] is not None),
            default=None,
        )
        cells["status"].append(Text(s["status"], style=STATUS_STYLE.get(s["status"], "")))
        cells["name"].append(Text(s["name"]))
        cells["step"].append(Text("" if step is None else format_number(float(step))))
        for name in metrics:
            m = s["metrics"].get(name)
            value = "-" if m is None else format_number(float(m["last"]))
            style = "dim" if m is None else ("red" if value in ("nan", "inf", "-inf") else "")
            cells[name].append(Text(value, style=style))
        fired = [v["name"] for v in s["rules"] if v["state"] == "triggered"]
        cells["rules"].append(
            Text(" ".join(fired) or ("ok" if s["rules"] else ""), style="red" if fired else "dim")
        )
        bad = s["health"]["bad_lines"]
        cells["bad"].append(Text(str(bad) if bad else "", style="yellow"))
        cells["format"].append(Text(s["format"]))
    caps = {"status": 8, "name": 64, "step": 8, "rules": 24, "bad": 5, "format": 13}
    # Chosen by importance, shown in reading order.
    priority = ["status", "name", "step", *metrics[:1], "rules", *metrics[1:], "bad", "format"]
    order = ["status", "name", "step", *metrics, "rules", "bad", "format"]

    def natural(column: str) -> int:
        return min(max([len(column), *(t.cell_len for t in cells[column])]), caps.get(column, 12))

    sizes: dict[str, int] = {}
    used = 1 + 12 + 3  # the border, and the narrowest name column
    for column in priority:
        if column == "name":
            continue
        size = natural(column)
        if used + size + 3 <= width:
            sizes[column] = size
            used += size + 3
    sizes["name"] = max(12, min(natural("name"), width - used + 12))
    chosen = [(column, sizes[column]) for column in order if column in sizes]
    title = Text(f"{len(summaries)} runs under {escape_path(str(root))}")
    table = Table(title=title, expand=False)
    for column, size in chosen:
        table.add_column(
            Text(column),
            overflow="ellipsis",
            no_wrap=True,
            max_width=size,
            justify="left" if column in ("status", "name", "format", "rules") else "right",
        )
    for i in range(len(summaries)):
        table.add_row(*(cells[column][i] for column, _ in chosen))
    return table


def main(args: argparse.Namespace) -> int:
    """Run ``tracktui status``; exit 0, or 2 on a usage error or unreadable ROOT."""
    if not args.root.is_dir():
        shown = escape_path(str(args.root))
        print(f"tracktui: {shown} is not a readable directory", file=sys.stderr)
        return 2
    if args.follow and not args.csv and (args.json or not sys.stdout.isatty()):
        return follow_lines(args)
    gpu = look(NvmlProvider()) if args.json else None
    try:
        summaries = gather(args, gpu)
    except (QueryError, RulesError) as exc:
        print(f"tracktui: {sanitize(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.buffer.write(to_json(args.root, summaries, gpu) + b"\n")
        return 0
    if args.csv:
        sys.stdout.write(to_csv(summaries))
        return 0
    from rich.console import Console

    console = Console()
    if not args.follow:
        console.print(render_table(args.root, summaries, console.width))
        return 0
    from rich.live import Live

    with Live(
        render_table(args.root, summaries, console.width), console=console, auto_refresh=False
    ) as live:
        try:
            while True:
                time.sleep(2.0)
                live.update(render_table(args.root, gather(args), console.width), refresh=True)
        except KeyboardInterrupt:
            return 0


STEP_EVERY = 2.0
"""Least seconds between two lines of one run that say only that its step moved."""


def follow_lines(args: argparse.Namespace) -> int:
    """``status --follow`` for a pipe: one JSON line per run whose status, step or verdicts
    changed (steps at most every :data:`STEP_EVERY` seconds per run), until SIGTERM/SIGINT.

    Each line: ``time``, ``run`` (id, name, path), ``status``, ``step``, ``rules`` (as in
    ``--json``) and ``changed`` (``new``, ``status``, ``step``, ``rules``).
    """
    try:
        query = parse_query(args.filter) if args.filter else None
    except QueryError as exc:
        print(f"tracktui: {exc}", file=sys.stderr)
        return 2
    rules = RulesFile(args.rules or args.root / RULES_FILE, required=args.rules is not None)
    load = rules.load()
    if load.problem is not None:
        print(f"tracktui: {load.problem}", file=sys.stderr)
        return 2
    follower = Follower(args.root, rules)
    out = LineWriter(sys.stdout.buffer)
    pending: dict[str, set[str]] = {}
    last_line: dict[str, float] = {}
    with stopped_by_signals(follower):
        for events in follower.passes():
            for event in events:
                if isinstance(event, RunChanged):
                    kinds = {"new"} if event.new else set()
                    if event.previous_status not in (None, event.status):
                        kinds.add("status")
                    if not event.new and event.step != event.previous_step:
                        kinds.add("step")
                    pending.setdefault(event.run.key, set()).update(kinds)
                elif isinstance(event, VerdictChanged):
                    pending.setdefault(event.run.key, set()).add("rules")
                elif isinstance(event, (RulesReloaded, Notice)):
                    message = event.message if isinstance(event, Notice) else event.load.problem
                    if message:
                        print(f"tracktui: {message}", file=sys.stderr, flush=True)
            moment = time.monotonic()
            for key in sorted(pending):
                kinds = pending[key]
                if kinds == {"step"} and moment - last_line.get(key, -STEP_EVERY) < STEP_EVERY:
                    continue  # said again once STEP_EVERY has passed (the loop ticks each second)
                del pending[key]
                run = follower.store.runs.get(key)
                if run is None or not kinds or not _wanted(query, run, follower):
                    continue
                last_line[key] = moment
                out.write(json_line(_change_line(run, follower, kinds)))
            if out.closed:
                follower.request_stop()
    return 0


def _wanted(query: Query | None, run: Run, follower: Follower) -> bool:
    if query is None:
        return True
    verdicts = follower.verdicts.get(run.key, [])
    triggered = {v.rule for v in verdicts if v.state == "triggered"}
    return query.matches(run, {"status": run.status, "rules": triggered})


def _change_line(run: Run, follower: Follower, kinds: set[str]) -> dict[str, Any]:
    return {
        "time": utc_iso(follower.clock()),
        "run": RunRef.of(run).json(),
        "status": run.status,
        "step": _number(run.last_step),
        "rules": [
            {"name": v.rule, "state": v.state, "step": _number(v.step), "reason": v.reason}
            for v in follower.verdicts.get(run.key, [])
        ],
        "changed": sorted(kinds),
    }
