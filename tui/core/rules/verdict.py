"""What one rule says about one run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

OK: Final = "ok"
WAITING: Final = "waiting"
TRIGGERED: Final = "triggered"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one rule says about one run.

    Attributes:
        rule: the rule's name.
        state: ``ok``, ``waiting`` (not enough data yet) or ``triggered``.
        step: the x value at which it triggered (``None`` unless triggered).
        reason: a sentence explaining the state, for the run view.
        action: the rule's action, ``flag`` or ``kill``.
    """

    rule: str
    state: str
    step: float | None = None
    reason: str | None = None
    action: str = "flag"
