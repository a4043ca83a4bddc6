"""Early-stopping rules: read ``tracktui.toml`` and give every run a verdict per rule.

The rules file (DESIGN.md §7) is a list of ``[[rule]]`` tables. Each rule gives each run a
:class:`Verdict`: ``ok``, ``waiting`` (not enough data yet) or ``triggered`` (with the step
and the reason). :class:`RuleEngine` evaluates incrementally: it remembers, per run and
rule, how many points it has consumed and looks only at new ones.

Semantics, per ``when``:

* ``nonfinite``: triggered at the first NaN, +inf or -inf point of ``metric``; the step is
  that point's x value. ``waiting`` until the run has a point of the metric.
* ``above`` / ``below``: triggered at the first finite point whose value is strictly
  greater (``above``) or less (``below``) than ``value``. NaN is neither above nor below
  anything (``nonfinite`` is its own rule). Values are stored as float32, so ``value`` is
  rounded to float32 before comparing: a logged ``0.1`` is not ``above = 0.1``.
* ``no_improvement``: Keras ``EarlyStopping`` over the points of ``metric`` (each point is
  one evaluation) in arrival order, on the effective history (see resumes below). ``best``
  starts at +inf (``mode = "min"``) or -inf (``"max"``). A point improves when it is
  finite and ``value < best - min_delta`` (max: ``value > best + min_delta``); an
  improvement sets ``best`` and resets the wait counter, anything else (NaN and +-inf
  included) adds one to it. Triggered when the wait counter reaches ``patience``;
  ``waiting`` while fewer than ``patience`` points were evaluated.
* ``worse_than_median``: the median stopping rule (Golovin et al. 2017, Google Vizier).
  For a run whose latest step ``s`` is at least ``after_step``, its best finite value over
  its points with step <= ``s`` is compared with the median of the same quantity for the
  *other* runs that have reached ``s`` (their latest step is >= ``s``) and have a finite
  point at or before it. Fewer than ``min_runs`` (default 3) such runs: ``waiting``.
  Triggered when strictly worse than that median (min: greater; max: smaller). Runs whose
  history is still loading (a partial preview) neither get a verdict nor count for others.
  The verdict of one run depends on the others, so every evaluation re-checks each run not
  yet triggered whose latest step is at or above the lowest step any run changed.
* ``stalled``: triggered when the run's status is ``running`` or ``stalled`` and more than
  ``seconds`` have passed since its last sign of life, the later of its last record's wall
  time and its files' modification time. ``ok`` for any other status.
* ``gpu_idle``: the run's process tree is on a GPU (holds memory there) but its GPU
  utilisation (:attr:`tui.core.gpu.GpuUse.utilization`) is under ``value`` percent in every
  GPU reading for at least ``seconds`` (from the first such reading to a later one, no
  reading in between above it). A run on no GPU is ``ok``; unknown utilisation (no
  per-process samples on a shared GPU) and no reading at all are ``waiting``.
* ``gpu_memory_above``: the run's processes hold more than ``value`` bytes of GPU memory
  (``value`` may be a size: ``"20GB"``; GB is GiB here, as on GPU spec sheets), in every
  reading for ``seconds`` (default 0: the first reading above triggers).
  Both GPU rules read ``run.gpu``, which whoever evaluates them keeps current from GPU
  readings (:attr:`RuleEngine.needs_gpu` says one is needed); only running or stalled runs
  are judged, others are ``ok``.

Keys: ``name`` (unique; default ``"<when> <metric>"``), ``when``, ``action`` (``flag`` or
``kill``, default ``flag``) for every rule; then ``metric`` (required) and ``after_step``
for all but ``stalled``; ``value`` (required) for ``above`` / ``below``; ``mode`` (``min`` or
``max``, default ``min``), ``patience`` (required, a positive integer) and ``min_delta``
(>= 0, default 0) for ``no_improvement``; ``mode`` and ``min_runs`` (positive integer,
default 3) for ``worse_than_median``; ``seconds`` (required, > 0) for ``stalled``;
``value`` (a percentage) and ``seconds`` (both required) for ``gpu_idle``; ``value``
(required, a size or bytes) and ``seconds`` for ``gpu_memory_above``. A key
that does not apply to the rule's ``when`` is a mistake, like an unknown one.

Common to all rules:

* ``after_step``: points with a step below it are ignored (``worse_than_median``: the run
  is only judged from that step on, but its best value counts earlier points). Default:
  no lower bound. Before it, the verdict is ``waiting``.
* Sticky: once triggered, a verdict keeps the step and reason of its first trigger, and the
  rule stops looking at that run. Only a run whose history was replaced (re-read from the
  start, ``Batch.replace``) is evaluated again from scratch.
* Each ``(run, rule)`` trigger is reported once by :meth:`RuleEngine.take_new_triggers`,
  even when a replaced history triggers it again, so a kill action fires once.
* Steps that go backwards (a run resumed from a checkpoint re-logs steps it had passed):
  the later points supersede the earlier ones. When a point arrives with a step lower than
  the previous point's, the earlier points with a step at or above it are dropped from the
  run's effective history and ``no_improvement`` restarts from the state it had before
  them (so re-logged evaluations are not counted twice); ``worse_than_median`` uses the
  effective history too. A trigger that already happened stays (sticky).
  ``nonfinite`` / ``above`` / ``below`` judge each point on its own and are unaffected.

Cost: each evaluation is O(new points) for the per-run rules, plus O(R) cheap checks over
all R runs for ``stalled`` and ``worse_than_median``. When runs changed, the median rule
re-evaluates k runs at q distinct steps in O(R q log n) (one vectorised ``searchsorted``
per run over its best-so-far curve) plus O(q R log R) to sort the columns, O(1) per run
after that. A resume costs one O(n) replay of the resumed run.
"""

from __future__ import annotations

from tui.core.rules.engine import RuleEngine
from tui.core.rules.source import RulesFile, RulesLoad
from tui.core.rules.spec import (
    ACTIONS,
    MAX_RULES_BYTES,
    RULES_FILE,
    WHENS,
    Rule,
    RulesError,
    decode_rules,
    find_rules,
    load_rules,
    parse_rules,
)
from tui.core.rules.verdict import OK, TRIGGERED, WAITING, Verdict

__all__ = [
    "ACTIONS",
    "MAX_RULES_BYTES",
    "OK",
    "RULES_FILE",
    "TRIGGERED",
    "WAITING",
    "WHENS",
    "Rule",
    "RuleEngine",
    "RulesError",
    "RulesFile",
    "RulesLoad",
    "Verdict",
    "decode_rules",
    "find_rules",
    "load_rules",
    "parse_rules",
]
