"""``HealthView``: the early-stopping rules' verdicts on a run, explained, and how reading it went.

Rules first (what each checks, its state, the step it triggered at and why), then the
reading: watcher mode, whether the history is complete, lines that were not records (with
file, line and reason), and events such as truncations and rotations.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.core.rules import Rule, Verdict
from tui.core.sanitize import sanitize
from tui.core.shapes import format_number
from tui.core.store import Run

VERDICT_BADGES = {
    "triggered": ("⚑ triggered", "bold red"),
    "waiting": ("… waiting", "yellow"),
    "ok": ("✓ ok", "green"),
}

BAD_EXAMPLES = 20
"""Bad-line examples listed (the count is exact)."""


def rules_text(
    rules: Sequence[Rule] | None, verdicts: Sequence[Verdict], error: str | None
) -> Text:
    """Each rule with its verdict on this run: state, step and reason."""
    text = Text()
    text.append("rules\n", style="bold")
    if error:
        text.append("  the rules file has an error: ", style="bold red")
        text.append(sanitize(error, 400))
        text.append("\n")
    if rules is None:
        if not error:
            text.append(
                "  no rules loaded: put [[rule]] tables in ROOT/tracktui.toml or pass --rules FILE\n",
                style="dim",
            )
        return text
    by_name = {v.rule: v for v in verdicts}
    width = max((len(r.name) for r in rules), default=4)
    for rule in rules:
        verdict = by_name.get(rule.name)
        state = verdict.state if verdict is not None else "waiting"
        badge, style = VERDICT_BADGES.get(state, (state, ""))
        text.append("  " + badge.ljust(12), style=style)
        text.append(sanitize(rule.name, 80).ljust(width), style="bold")
        text.append("  " + sanitize(rule.describe(), 300), style="dim")
        if verdict is not None and verdict.state == "triggered" and verdict.step is not None:
            text.append(f"  at step {format_number(verdict.step)}", style="bold")
        text.append("\n")
        if verdict is not None and verdict.reason:
            text.append(" " * 14 + sanitize(verdict.reason, 400) + "\n")
    text.rstrip()
    return text


def reading_text(run: Run, watch_mode: str) -> Text:
    """How the run's files were read: watcher, completeness, bad lines, notes."""
    health = run.health
    text = Text()
    text.append("reading\n", style="bold")
    text.append(f"  watcher    {sanitize(watch_mode, 200)}\n")
    if run.partial:
        text.append(
            "  history    partial: the end of the files only, full history loading\n",
            style="yellow",
        )
    else:
        text.append("  history    complete\n")
    kept = len(run.log)
    text.append(f"  log        {run.log_total} lines read")
    if run.log_total > kept:
        text.append(f", the last {kept} kept")
    text.append("\n")
    style = "bold red" if health.bad_lines else ""
    text.append("  bad lines  ")
    text.append(str(health.bad_lines), style=style)
    if health.bad_lines:
        text.append(" (lines that are not records; never fatal)")
    text.append("\n")
    samples = list(health.samples)[-BAD_EXAMPLES:]
    for file, line, reason in samples:
        text.append(f"    {sanitize(file, 200)}:{line}  ", style="cyan")
        text.append(sanitize(reason, 300) + "\n")
    if health.bad_lines > len(samples):
        text.append(f"    … and {health.bad_lines - len(samples)} more\n", style="dim")
    if health.truncations:
        text.append(f"  truncated  {health.truncations} time(s)\n", style="yellow")
    text.append("  notes      ")
    if not health.notes:
        text.append("none\n", style="dim")
    else:
        text.append(f"{len(health.notes)}\n")
        for note in health.notes[-50:]:
            text.append("    " + sanitize(note, 400) + "\n")
    text.rstrip()
    return text


class HealthView(VerticalScroll, can_focus=True):
    """Rule verdicts explained, then the reading health of the run."""

    DEFAULT_CSS = """
    HealthView {
        height: 1fr;
        padding: 0 1;
    }
    HealthView > #rules-text {
        margin: 0 0 1 0;
    }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="rules-text")
        yield Static(id="reading-text")

    def show_rules(
        self, rules: Sequence[Rule] | None, verdicts: Sequence[Verdict], error: str | None
    ) -> None:
        """Draw the verdicts of ``rules`` on this run."""
        self.query_one("#rules-text", Static).update(rules_text(rules, verdicts, error))

    def show_reading(self, run: Run, watch_mode: str) -> None:
        """Draw how reading ``run`` went."""
        self.query_one("#reading-text", Static).update(reading_text(run, watch_mode))
