"""Early-stopping rules: the rules file, every rule kind by hand, and the incremental engine."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.core.records import RecordBuilder
from tui.core.rules import (
    Rule,
    RuleEngine,
    RulesError,
    Verdict,
    find_rules,
    load_rules,
    parse_rules,
)
from tui.core.rules import checks as rules_module
from tui.core.store import Batch, RunStore

NAN, INF = math.nan, math.inf

DESIGN_EXAMPLE = """\
[[rule]]
name = "diverged"
metric = "loss"
when = "nonfinite"            # NaN or +-inf seen
action = "kill"               # "flag" (default) or "kill" (acts only with --auto-kill)

[[rule]]
name = "exploding"
metric = "loss"
when = "above"                # also "below"
value = 10.0
after_step = 200

[[rule]]
name = "plateau"
metric = "val_accuracy"
when = "no_improvement"       # Keras EarlyStopping semantics
mode = "max"
patience = 5                  # evaluations
min_delta = 0.001

[[rule]]
name = "median"
metric = "val_loss"
when = "worse_than_median"    # median stopping rule across runs at the same step
mode = "min"
after_step = 1000
min_runs = 3

[[rule]]
name = "stalled"
when = "stalled"
seconds = 900
"""


# Helpers ----------------------------------------------------------------------------------
def feed(
    store: RunStore,
    key: str,
    records: list[dict[str, Any]],
    *,
    now: float = 1000.0,
    replace: bool = False,
    partial: bool = False,
    mtime: float | None = None,
) -> None:
    builder = RecordBuilder(now=now)
    builder.add_records(records)
    store.apply(
        Batch(
            key=key,
            records=builder.build(),
            replace=replace,
            partial=partial,
            mtime=mtime,
        )
    )


def points(metric: str, pairs: list[tuple[float, float]]) -> list[dict[str, Any]]:
    return [{"step": step, metric: value} for step, value in pairs]


def rule(text: str) -> Rule:
    (only,) = parse_rules("[[rule]]\n" + text, "test.toml")
    return only


def single(engine: RuleEngine, store: RunStore, key: str, now: float = 1000.0) -> Verdict:
    engine.evaluate(store, [key], now=now)
    (verdict,) = engine.verdicts(key)
    return verdict


# The rules file ---------------------------------------------------------------------------
def test_design_example_parses_into_five_rules() -> None:
    parsed = parse_rules(DESIGN_EXAMPLE, "tracktui.toml")
    assert [(r.name, r.when, r.metric, r.action) for r in parsed] == [
        ("diverged", "nonfinite", "loss", "kill"),
        ("exploding", "above", "loss", "flag"),
        ("plateau", "no_improvement", "val_accuracy", "flag"),
        ("median", "worse_than_median", "val_loss", "flag"),
        ("stalled", "stalled", None, "flag"),
    ]
    exploding, plateau, median, stalled = parsed[1:]
    assert (exploding.value, exploding.after_step) == (10.0, 200.0)
    assert (plateau.mode, plateau.patience, plateau.min_delta) == ("max", 5, 0.001)
    assert (median.mode, median.after_step, median.min_runs) == ("min", 1000.0, 3)
    assert stalled.seconds == 900.0
    assert [r.line for r in parsed] == [1, 7, 14, 22, 30]
    assert exploding.describe() == "loss above 10 from step 200 -> flag"


def test_the_briefs_example_message_word_for_word() -> None:
    text = (
        '[[rule]]\nname = "diverged"\nmetric = "loss"\nwhen = "nonfinite"\naction = "kill"\n\n'
        '[[rule]]\nname = "plateau"\nmetric = "val_accuracy"\nwhen = "no_improvement"\n'
        'mode = "max"\npatience = -5\n'
    )
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "tracktui.toml")
    assert str(caught.value) == (
        'tracktui.toml line 12: rule "plateau": patience must be a positive integer, not -5'
    )
    assert (caught.value.source, caught.value.line) == ("tracktui.toml", 12)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('[[rule]]\nname = "a"\nmetric = "loss\nwhen = "nonfinite"\n', 3, "invalid TOML"),
        ('[[rule]]\nname = "a"\nmetric = "loss"\nwhen = "nonfinite"\npatiense = 5\n', 5,
         'unknown key "patiense"'),
        ('[[rule]]\nname = "a"\nmetric = "loss"\nwhen = "sometimes"\n', 4, "when must be one of"),
        ('\n[[rule]]\nname = "a"\nwhen = "nonfinite"\n', 2, 'needs metric'),
        ('[[rule]]\nname = "a"\nmetric = "loss"\n', 1, "missing when"),
        ('[[rule]]\nname = "a"\nmetric = "loss"\nwhen = "above"\nvalue = "ten"\n', 5,
         "value must be a finite number"),
        ('[[rule]]\nname = "a"\nmetric = "loss"\nwhen = "above"\nvalue = true\n', 5,
         "value must be a finite number"),
        ('[[rule]]\nname = "a"\nmetric = "loss"\nwhen = "above"\nvalue = nan\n', 5,
         "value must be a finite number"),
        ('[[rule]]\nname = "a"\nmetric = "loss"\nwhen = "above"\n', 1, "needs value"),
        ('[[rule]]\nname = "a"\nmetric = "x"\nwhen = "no_improvement"\npatience = 2.0\n', 5,
         "patience must be a positive integer"),
        ('[[rule]]\nname = "a"\nmetric = "x"\nwhen = "no_improvement"\npatience = 0\n', 5,
         "patience must be a positive integer"),
        ('[[rule]]\nname = "a"\nmetric = "x"\nwhen = "no_improvement"\n', 1, "needs patience"),
        ('[[rule]]\nname = "a"\nmetric = "x"\nwhen = "no_improvement"\npatience = 2\n'
         "min_delta = -0.1\n", 6, "min_delta must be at least 0"),
        ('[[rule]]\nname = "a"\nmetric = "x"\nwhen = "no_improvement"\npatience = 2\n'
         'mode = "maximum"\n', 6, 'mode must be "min" or "max"'),
        ('[[rule]]\nname = "a"\nmetric = "loss"\nwhen = "above"\nvalue = 1\npatience = 3\n', 6,
         'patience does not apply to when = "above"'),
        ('[[rule]]\nname = "a"\nmetric = "loss"\nwhen = "nonfinite"\naction = "stop"\n', 5,
         'action must be "flag" or "kill"'),
        ('[[rule]]\nname = "a"\nwhen = "stalled"\nseconds = 0\n', 4,
         "seconds must be a positive number"),
        ('[[rule]]\nname = "a"\nwhen = "stalled"\nseconds = 60\nmetric = "loss"\n', 5,
         'metric does not apply to when = "stalled"'),
        ('[[rule]]\nname = "a"\nmetric = "x"\nwhen = "worse_than_median"\nmin_runs = 0\n', 5,
         "min_runs must be a positive integer"),
        ('[[rule]]\nname = ""\nmetric = "x"\nwhen = "nonfinite"\n', 2,
         "name must be a non-empty string"),
        ('[rule]\nname = "a"\nmetric = "x"\nwhen = "nonfinite"\n', 1, "[[rule]] tables"),
        ('threshold = 3\n[[rule]]\nname = "a"\nmetric = "x"\nwhen = "nonfinite"\n', 1,
         'unknown key "threshold"'),
        ('[[rule]]\nname = "a"\nmetric = "x"\nwhen = "nonfinite"\n\n[settings]\nx = 1\n', 6,
         'unknown key "settings"'),
        ('[[rule]]\nname = "a"\nmetric = "x"\nwhen = "nonfinite"\n\n'
         '[[rule]]\nwhen = "stalled"\nseconds = 5\nname = "a"\n', 9, "same name"),
    ],
)  # fmt: skip
def test_rules_file_mistakes_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "my.toml")
    message = str(caught.value)
    assert message.startswith(f"my.toml line {line}: "), message
    assert fragment in message
    assert caught.value.line == line


def test_error_names_the_rule_by_name_or_position() -> None:
    text = '[[rule]]\nname = "ok"\nwhen = "stalled"\nseconds = 5\n\n[[rule]]\nwhen = "bogus"\n'
    with pytest.raises(RulesError, match=r"^x line 7: rule #2: when must be one of"):
        parse_rules(text, "x")


def test_empty_file_has_no_rules_and_missing_name_gets_a_default() -> None:
    assert parse_rules("# nothing yet\n", "t.toml") == []
    assert rule('metric = "loss"\nwhen = "nonfinite"').name == "nonfinite loss"


def test_load_rules_reads_the_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "tracktui.toml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    assert load_rules(path)[0].name == "diverged"
    path.write_text(DESIGN_EXAMPLE.replace('when = "above"', 'when = "over"'), encoding="utf-8")
    with pytest.raises(RulesError, match=rf"^{path} line 10: rule \"exploding\""):
        load_rules(path)
    path.write_bytes(b'[[rule]]\nname = "\xff"\n')
    with pytest.raises(RulesError, match=r"line 2: not UTF-8"):
        load_rules(path)
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")


def test_find_rules_prefers_the_override_then_root(tmp_path: Path) -> None:
    assert find_rules(tmp_path, None) is None
    (tmp_path / "tracktui.toml").write_text("", encoding="utf-8")
    assert find_rules(tmp_path, None) == tmp_path / "tracktui.toml"
    override = tmp_path / "other.toml"
    assert find_rules(tmp_path, override) == override


# nonfinite --------------------------------------------------------------------------------
NONFINITE = 'name = "diverged"\nmetric = "loss"\nwhen = "nonfinite"\naction = "kill"'


def test_nonfinite_triggers_at_the_first_nan_in_the_middle() -> None:
    store, engine = RunStore(), RuleEngine([rule(NONFINITE)])
    feed(store, "r", [{"step": 0, "acc": 0.5}])
    assert single(engine, store, "r") == Verdict("diverged", "waiting", None, "no loss yet", "kill")
    feed(store, "r", points("loss", [(0, 1.0), (10, 0.5)]))
    assert single(engine, store, "r").state == "ok"
    feed(store, "r", points("loss", [(20, 0.25), (30, NAN), (40, INF), (50, 0.1)]))
    assert single(engine, store, "r") == Verdict(
        "diverged", "triggered", 30.0, "loss is nan at step 30", "kill"
    )


def test_nonfinite_sees_infinity_and_respects_after_step() -> None:
    store = RunStore()
    engine = RuleEngine([rule('metric = "loss"\nwhen = "nonfinite"\nafter_step = 5')])
    feed(store, "r", points("loss", [(1, NAN), (2, 0.5)]))
    assert single(engine, store, "r").reason == "waiting for step 5 (at 2)"
    feed(store, "r", points("loss", [(5, 0.5), (6, -INF)]))
    verdict = single(engine, store, "r")
    assert (verdict.state, verdict.step, verdict.reason) == (
        "triggered",
        6.0,
        "loss is -inf at step 6",
    )


# above / below ----------------------------------------------------------------------------
ABOVE = 'name = "exploding"\nmetric = "loss"\nwhen = "above"\nvalue = 10.0\nafter_step = 200'


def test_above_waits_for_after_step_ignores_nan_and_stays_triggered() -> None:
    store, engine = RunStore(), RuleEngine([rule(ABOVE)])
    feed(store, "r", points("loss", [(100, 50.0), (150, 40.0)]))
    assert single(engine, store, "r").state == "waiting"
    feed(store, "r", points("loss", [(200, 5.0), (250, NAN), (260, INF)]))
    assert single(engine, store, "r") == Verdict(
        "exploding", "ok", None, "loss never above 10", "flag"
    )
    feed(store, "r", points("loss", [(300, 12.5), (310, 11.0)]))
    first = single(engine, store, "r")
    assert (first.state, first.step, first.reason) == (
        "triggered",
        300.0,
        "loss = 12.5 > 10 at step 300",
    )
    feed(store, "r", points("loss", [(400, 1.0), (500, 99.0)]))
    assert single(engine, store, "r") == first


def test_below_ignores_minus_infinity_and_compares_at_float32() -> None:
    store = RunStore()
    engine = RuleEngine(
        [
            rule('name = "low"\nmetric = "acc"\nwhen = "below"\nvalue = 0.5'),
            rule('name = "tenth"\nmetric = "lr"\nwhen = "above"\nvalue = 0.1'),
        ]
    )
    feed(store, "r", [{"step": 1, "acc": 0.75, "lr": 0.1}, {"step": 2, "acc": -INF, "lr": 0.1}])
    engine.evaluate(store, now=0)
    low, tenth = engine.verdicts("r")
    assert low.state == "ok"
    assert tenth.state == "ok"  # 0.1 is stored as float32(0.1): not above the threshold 0.1
    feed(store, "r", [{"step": 3, "acc": 0.25, "lr": 0.1000001}])
    engine.evaluate(store, now=0)
    low, tenth = engine.verdicts("r")
    assert (low.state, low.step, low.reason) == ("triggered", 3.0, "acc = 0.25 < 0.5 at step 3")
    assert (tenth.state, tenth.step) == ("triggered", 3.0)


# no_improvement ---------------------------------------------------------------------------
def plateau(patience: int, mode: str = "min", delta: float = 0.0, after: str = "") -> Rule:
    return rule(
        f'name = "plateau"\nmetric = "m"\nwhen = "no_improvement"\nmode = "{mode}"\n'
        f"patience = {patience}\nmin_delta = {delta}\n{after}"
    )


# Values are multiples of 1/16 and min_delta 1/8, exact in float32, so the arithmetic is exact.
KERAS_SERIES = [1.0, 0.9375, 0.875, 0.8125, 0.75, 0.75, 0.6875, 0.625, 0.625, 0.625]


def test_no_improvement_follows_keras_with_min_delta() -> None:
    # best 1.0 (step 1); .9375 w1; .875 is not < 1 - .125 (strict) w2; .8125 best w0;
    # .75 w1; .75 w2; .6875 is not < .8125 - .125 w3 -> patience 3 triggers at step 7.
    store, engine = RunStore(), RuleEngine([plateau(3, delta=0.125)])
    feed(store, "r", points("m", list(enumerate(KERAS_SERIES[:2], start=1))))
    assert single(engine, store, "r").reason == "2 of 3 evaluations so far"
    feed(store, "r", points("m", list(enumerate(KERAS_SERIES, start=1))[2:]))
    assert single(engine, store, "r") == Verdict(
        "plateau",
        "triggered",
        7.0,
        "no improvement of m in 3 evaluations (best 0.8125 at step 4)",
        "flag",
    )


def test_no_improvement_with_more_patience_is_ok_and_counts() -> None:
    # As above, then .625 < .8125 - .125 improves at step 8; two more .625: wait 2.
    store, engine = RunStore(), RuleEngine([plateau(4, delta=0.125)])
    feed(store, "r", points("m", list(enumerate(KERAS_SERIES, start=1))))
    assert single(engine, store, "r") == Verdict(
        "plateau",
        "ok",
        None,
        "best 0.625 at step 8; 2 of 4 evaluations without improvement",
        "flag",
    )


def test_no_improvement_max_mode_counts_nan_as_no_improvement() -> None:
    # max: .5 best; .625 best; nan w1; .75 best w0; nan w1; inf w2 -> patience 2 at step 6.
    store, engine = RunStore(), RuleEngine([plateau(2, mode="max")])
    feed(store, "r", points("m", [(1, 0.5), (2, 0.625), (3, NAN), (4, 0.75), (5, NAN)]))
    assert single(engine, store, "r").reason == (
        "best 0.75 at step 4; 1 of 2 evaluations without improvement"
    )
    feed(store, "r", points("m", [(6, INF)]))
    verdict = single(engine, store, "r")
    assert (verdict.state, verdict.step) == ("triggered", 6.0)
    assert verdict.reason == "no improvement of m in 2 evaluations (best 0.75 at step 4)"


def test_no_improvement_on_nan_only_triggers_without_crashing() -> None:
    store, engine = RunStore(), RuleEngine([plateau(2)])
    feed(store, "r", points("m", [(1, NAN), (2, NAN)]))
    assert single(engine, store, "r").reason == "no finite m in 2 evaluations"


def test_no_improvement_after_step_skips_warmup() -> None:
    store, engine = RunStore(), RuleEngine([plateau(2, after="after_step = 10")])
    feed(store, "r", points("m", [(1, 0.5), (2, 0.75), (3, 0.75), (9, 0.75)]))
    assert single(engine, store, "r").reason == "waiting for step 10 (at 9)"
    feed(store, "r", points("m", [(10, 0.75), (11, 0.75)]))
    assert single(engine, store, "r").state == "ok"  # best 0.75 from step 10 on, wait 1
    feed(store, "r", points("m", [(12, 0.75)]))
    assert single(engine, store, "r").step == 12.0


def test_resume_relogged_steps_are_not_counted_twice() -> None:
    # Steps 1-4, crash, resume from the checkpoint at step 3: steps 3 and 4 are logged again.
    # Effective history 1, 2, 3', 4' -> wait 2; counting arrival order would give wait 4.
    store, engine = RunStore(), RuleEngine([plateau(3)])
    feed(store, "r", points("m", [(1, 1.0), (2, 0.5), (3, 0.5), (4, 0.5)]))
    assert single(engine, store, "r").reason.endswith("2 of 3 evaluations without improvement")
    feed(store, "r", points("m", [(3, 0.5), (4, 0.5)]))
    assert single(engine, store, "r").reason == (
        "best 0.5 at step 2; 2 of 3 evaluations without improvement"
    )
    feed(store, "r", points("m", [(5, 0.5)]))
    assert single(engine, store, "r").step == 5.0


def test_resume_before_the_best_forgets_the_abandoned_branch() -> None:
    # The abandoned branch reached 0.25 at step 3; the resumed run restarts at step 2 and
    # its best is its own 0.875: three flat points after it trigger at step 5.
    store, engine = RunStore(), RuleEngine([plateau(3)])
    feed(store, "r", points("m", [(1, 1.0), (2, 0.9), (3, 0.25), (4, 0.5)]))
    feed(store, "r", points("m", [(2, 0.875), (3, 0.9), (4, 0.9)]))
    assert single(engine, store, "r").reason == (
        "best 0.875 at step 2; 2 of 3 evaluations without improvement"
    )
    feed(store, "r", points("m", [(5, 0.9)]))
    verdict = single(engine, store, "r")
    assert (verdict.step, verdict.reason) == (
        5.0,
        "no improvement of m in 3 evaluations (best 0.875 at step 2)",
    )


def test_a_second_resume_does_not_revive_superseded_points() -> None:
    # 1-5, resume at 2 (2', 3', 4'), resume at 3 (3''): the effective history is 1, 2', 3''
    # (the first 2 stays superseded): 3 evaluations, wait 1; then 2, 3 and 4 at step 6.
    store, engine = RunStore(), RuleEngine([plateau(4)])
    first = [(1, 1.0), (2, 0.5), (3, 0.5), (4, 0.5), (5, 0.5)]
    feed(store, "r", points("m", [*first, (2, 0.5), (3, 0.5), (4, 0.5), (3, 0.5)]))
    assert single(engine, store, "r").reason == "3 of 4 evaluations so far"
    feed(store, "r", points("m", [(4, 0.5), (5, 0.5)]))
    assert single(engine, store, "r").reason == (
        "best 0.5 at step 2; 3 of 4 evaluations without improvement"
    )
    feed(store, "r", points("m", [(6, 0.5)]))
    assert single(engine, store, "r").step == 6.0


def test_a_long_plateau_triggers_at_the_exact_point() -> None:
    # 0.5 at step 0, then 299 points of 1.0: patience 280 runs out at step 280. The first
    # block of 256 is scanned point by point, the rest skipped as a plateau.
    store, engine = RunStore(), RuleEngine([plateau(280)])
    feed(store, "r", points("m", [(0, 0.5)] + [(float(i), 1.0) for i in range(1, 300)]))
    verdict = single(engine, store, "r")
    assert (verdict.step, verdict.reason) == (
        280.0,
        "no improvement of m in 280 evaluations (best 0.5 at step 0)",
    )


# worse_than_median ------------------------------------------------------------------------
def median_rule(min_runs: int = 3, mode: str = "min", after: float = 2) -> Rule:
    return rule(
        f'name = "median"\nmetric = "val_loss"\nwhen = "worse_than_median"\nmode = "{mode}"\n'
        f"after_step = {after}\nmin_runs = {min_runs}"
    )


MEDIAN_RUNS = {
    "a": [(1, 1.0), (2, 0.5), (3, 0.25)],
    "b": [(1, 0.75), (2, 0.625), (3, 0.5)],
    "c": [(1, 0.5), (2, 0.75), (3, 0.875)],  # best-so-far 0.5 throughout
    "d": [(1, 2.0), (2, 1.5), (3, 1.25)],
    "e": [(1, 1.0), (2, 1.0)],  # has only reached step 2
}


def median_store(runs: dict[str, list[tuple[float, float]]]) -> RunStore:
    store = RunStore()
    for key, pairs in runs.items():
        feed(store, key, points("val_loss", pairs))
    return store


def test_median_rule_by_hand() -> None:
    store, engine = median_store(MEDIAN_RUNS), RuleEngine([median_rule()])
    engine.evaluate(store, now=0)
    got = {key: engine.verdicts(key)[0] for key in MEDIAN_RUNS}
    # d at step 3: others at step 3 are a .25, b .5, c .5 -> median .5 < 1.25.
    assert (got["d"].state, got["d"].step) == ("triggered", 3.0)
    assert got["d"].reason == "best val_loss 1.25 at step 3 vs median 0.5 of 3 other runs"
    # e at step 2: a .5, b .625, c .5, d 1.5 -> median (.5 + .625) / 2 = .5625 < 1.0.
    assert got["e"].reason == "best val_loss 1 at step 2 vs median 0.5625 of 4 other runs"
    assert (got["e"].state, got["e"].step) == ("triggered", 2.0)
    # a .25 and b, c at exactly the median .5 are not strictly worse.
    assert [got[k].state for k in "abc"] == ["ok", "ok", "ok"]
    assert got["b"].reason == "best val_loss 0.5 at step 3 vs median 0.5 of 3 other runs"


def test_median_rule_waits_for_enough_runs_and_for_after_step() -> None:
    store, engine = median_store(MEDIAN_RUNS), RuleEngine([median_rule(min_runs=4)])
    engine.evaluate(store, now=0)
    assert engine.verdicts("d")[0].reason == "needs 4 other runs at step 3, has 3"
    assert engine.verdicts("e")[0].state == "triggered"  # four others at step 2
    store = median_store({k: v[:1] for k, v in MEDIAN_RUNS.items()})
    engine = RuleEngine([median_rule()])
    engine.evaluate(store, now=0)
    assert engine.verdicts("d")[0].reason == "waiting for step 2 (at 1)"


def test_median_rule_max_mode() -> None:
    runs = {k: [(s, -v) for s, v in pairs] for k, pairs in MEDIAN_RUNS.items()}
    store, engine = median_store(runs), RuleEngine([median_rule(mode="max")])
    engine.evaluate(store, now=0)
    assert [engine.verdicts(k)[0].state for k in "abcde"] == [
        "ok",
        "ok",
        "ok",
        "triggered",
        "triggered",
    ]
    assert engine.verdicts("d")[0].reason == (
        "best val_loss -1.25 at step 3 vs median -0.5 of 3 other runs"
    )


def test_median_rule_reevaluates_a_waiting_run_when_others_catch_up() -> None:
    store, engine = RunStore(), RuleEngine([median_rule()])
    feed(store, "d", points("val_loss", MEDIAN_RUNS["d"]))
    for key in "abc":
        feed(store, key, points("val_loss", MEDIAN_RUNS[key][:2]))
    result = engine.evaluate(store, now=0)
    assert result["d"][0].reason == "needs 3 other runs at step 3, has 0"
    # b at step 2: a .5, c .5, d 1.5 -> median .5 < .625.
    assert [(k, v.step) for k, v in engine.take_new_triggers()] == [("b", 2.0)]
    for key in "ab":
        feed(store, key, points("val_loss", MEDIAN_RUNS[key][2:]))
        engine.evaluate(store, [key], now=0)
    assert engine.verdicts("d")[0].reason == "needs 3 other runs at step 3, has 2"
    feed(store, "c", points("val_loss", MEDIAN_RUNS["c"][2:]))
    result = engine.evaluate(store, ["c"], now=0)
    assert result["d"][0].state == "triggered"  # d did not change, but its verdict did
    assert engine.take_new_triggers() == [("d", result["d"][0])]


def test_median_rule_ignores_partial_runs_and_nan() -> None:
    runs = {k: v for k, v in MEDIAN_RUNS.items() if k != "c"}
    store = median_store(runs)
    feed(store, "c", points("val_loss", MEDIAN_RUNS["c"]), partial=True)
    feed(store, "f", points("val_loss", [(1, NAN), (3, -INF)]))
    engine = RuleEngine([median_rule()])
    engine.evaluate(store, now=0)
    assert engine.verdicts("c")[0].reason == "history still loading"
    assert engine.verdicts("f")[0].reason == "no finite val_loss yet"
    assert engine.verdicts("d")[0].reason == "needs 3 other runs at step 3, has 2"
    feed(store, "c", points("val_loss", MEDIAN_RUNS["c"]), replace=True)
    engine.evaluate(store, ["c"], now=0)
    assert engine.verdicts("d")[0].reason == (
        "best val_loss 1.25 at step 3 vs median 0.5 of 3 other runs"
    )


def test_median_rule_uses_the_effective_history_after_a_resume() -> None:
    # d logged a great 0.125 at step 3, then resumed from step 2: that point is superseded.
    store = median_store({k: v for k, v in MEDIAN_RUNS.items() if k != "d"})
    feed(store, "d", points("val_loss", [(1, 2.0), (2, 1.5), (3, 0.125)]))
    engine = RuleEngine([median_rule()])
    engine.evaluate(store, now=0)
    assert engine.verdicts("d")[0].state == "ok"
    feed(store, "d", points("val_loss", [(2, 1.5), (3, 1.25)]))
    engine.evaluate(store, ["d"], now=0)
    assert engine.verdicts("d")[0].reason == (
        "best val_loss 1.25 at step 3 vs median 0.5 of 3 other runs"
    )


@pytest.mark.parametrize("small", [0, 32])  # through numpy, and as Python lists
def test_a_resume_elsewhere_re_judges_runs_at_lower_steps(
    small: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # x (step 2) is compared with a, b, c; then c resumes from step 1, so it no longer
    # counts at step 2 and x is back to waiting, though x itself did not change.
    monkeypatch.setattr(rules_module, "_SMALL", small)
    store = median_store({k: MEDIAN_RUNS[k] for k in "abc"})
    feed(store, "x", points("val_loss", [(1, 1.0), (2, 0.25)]))
    engine = RuleEngine([median_rule()])
    engine.evaluate(store, now=0)
    assert engine.verdicts("x")[0].state == "ok"
    feed(store, "c", points("val_loss", [(1, 5.0)]))
    result = engine.evaluate(store, ["c"], now=0)
    assert result["x"][0].reason == "needs 3 other runs at step 2, has 2"


# stalled ----------------------------------------------------------------------------------
STALLED = 'name = "stalled"\nwhen = "stalled"\nseconds = 900'


def test_stalled_by_injected_clock() -> None:
    clock = [1500.0]
    store, engine = RunStore(), RuleEngine([rule(STALLED)], clock=lambda: clock[0])
    store.apply(Batch(key="r"))
    store.runs["r"].status = "running"
    assert single(engine, store, "r").reason == "no record yet"
    feed(store, "r", [{"step": 7, "loss": 1.0}], now=1000.0)
    assert single(engine, store, "r", now=1900.0).state == "ok"
    engine.evaluate(store, [])  # the clock: 1500
    assert engine.verdicts("r")[0].state == "ok"
    clock[0] = 1901.0
    result = engine.evaluate(store, [])
    assert result["r"] == [
        Verdict("stalled", "triggered", 7.0, "no new record for 901 s (limit 900 s)", "flag")
    ]
    feed(store, "r", [{"step": 8, "loss": 1.0}], now=1901.0)
    assert single(engine, store, "r", now=1902.0).step == 7.0  # sticky


def test_stalled_uses_the_later_of_record_time_and_mtime_and_needs_running() -> None:
    store, engine = RunStore(), RuleEngine([rule(STALLED)])
    feed(store, "r", [{"step": 1, "loss": 1.0}], now=1000.0, mtime=1500.0)
    store.runs["r"].status = "finished"
    assert single(engine, store, "r", now=5000.0).reason == "not running (finished)"
    store.runs["r"].status = "stalled"
    assert single(engine, store, "r", now=2400.0).state == "ok"
    assert single(engine, store, "r", now=2401.0).state == "triggered"


# Engine behaviour -------------------------------------------------------------------------
def test_new_triggers_are_reported_once_even_after_a_replace() -> None:
    store, engine = RunStore(), RuleEngine([rule(NONFINITE)])
    feed(store, "r", points("loss", [(90, NAN)]), partial=True)
    engine.evaluate(store, now=0)
    (taken,) = engine.take_new_triggers()
    assert taken == ("r", engine.verdicts("r")[0]) and taken[1].step == 90.0
    engine.evaluate(store, now=0)
    assert engine.take_new_triggers() == []
    # The full history replaces the preview: evaluated from scratch, not announced again.
    feed(store, "r", points("loss", [(10, 1.0), (50, INF), (90, NAN)]), replace=True)
    engine.evaluate(store, ["r"], now=0)
    assert engine.verdicts("r")[0].step == 50.0
    assert engine.take_new_triggers() == []
    feed(store, "r", points("loss", [(10, 1.0)]), replace=True)
    engine.evaluate(store, ["r"], now=0)
    assert engine.verdicts("r")[0].state == "ok"


def test_evaluate_returns_given_runs_and_leaves_others_for_their_turn() -> None:
    store, engine = RunStore(), RuleEngine([rule(NONFINITE), rule(ABOVE)])
    feed(store, "a", points("loss", [(1, 1.0)]))
    feed(store, "b", points("loss", [(1, NAN)]))
    assert set(engine.evaluate(store, ["a"], now=0)) == {"a"}
    assert engine.verdicts("b")[0].reason == "not evaluated yet"
    result = engine.evaluate(store, ["b", "gone"], now=0)
    assert set(result) == {"b"} and result["b"][0].state == "triggered"
    assert engine.evaluate(store, None, now=0).keys() == {"a", "b"}


# Property tests ---------------------------------------------------------------------------
VALUES = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 12.0, NAN, INF, -INF])
STEPS = st.lists(st.tuples(st.integers(-2, 3), VALUES), min_size=1, max_size=60)
PER_RUN_RULES = [
    rule('name = "nf"\nmetric = "m"\nwhen = "nonfinite"\nafter_step = 5'),
    rule('name = "hi"\nmetric = "m"\nwhen = "above"\nvalue = 1.0\nafter_step = 10'),
    rule('name = "lo"\nmetric = "m"\nwhen = "below"\nvalue = 0.5'),
    rule('name = "p1"\nmetric = "m"\nwhen = "no_improvement"\npatience = 4'),
    rule('name = "p2"\nmetric = "m"\nwhen = "no_improvement"\npatience = 3\nmode = "max"\n'
         "min_delta = 0.25\nafter_step = 6"),
]  # fmt: skip


def walk(moves: list[tuple[int, float]]) -> list[tuple[float, float]]:
    """Steps that mostly go up (by 0 to 3) and sometimes back (a resume)."""
    step, out = 0, []
    for move, value in moves:
        step = max(0, step + (move if move >= 0 else 3 * move))
        out.append((float(step), value))
    return out


def keras_reference(rule_: Rule, pairs: list[tuple[float, float]]) -> tuple[str, float | None]:
    """Point by point, recomputing from the effective history each time (quadratic)."""
    sign = -1.0 if rule_.mode == "max" else 1.0
    timeline: list[tuple[float, float]] = []
    for step, value in pairs:
        if timeline and step < timeline[-1][0]:
            timeline = [p for p in timeline if p[0] < step]
        timeline.append((step, value))
        best, wait, seen = math.inf, 0, 0
        for s, v in timeline:
            if rule_.after_step is not None and s < rule_.after_step:
                continue
            seen += 1
            if math.isfinite(v) and sign * v < best - rule_.min_delta:
                best, wait = sign * v, 0
            else:
                wait += 1
        if wait >= rule_.patience:
            return "triggered", step
    if not timeline:
        return "waiting", None
    return ("ok" if seen >= rule_.patience else "waiting"), None


def point_reference(rule_: Rule, pairs: list[tuple[float, float]]) -> tuple[str, float | None]:
    seen = False
    for step, value in pairs:
        if rule_.after_step is not None and step < rule_.after_step:
            continue
        seen = True
        if rule_.when == "nonfinite":
            hit = not math.isfinite(value)
        elif rule_.when == "above":
            hit = math.isfinite(value) and value > (rule_.value or 0)
        else:
            hit = math.isfinite(value) and value < (rule_.value or 0)
        if hit:
            return "triggered", step
    return ("ok" if seen else "waiting"), None


@settings(max_examples=300, deadline=None)
@given(moves=STEPS, cuts=st.lists(st.integers(1, 8), min_size=1, max_size=20), tiny=st.booleans())
def test_any_chunking_gives_the_reference_verdicts(
    moves: list[tuple[int, float]], cuts: list[int], tiny: bool
) -> None:
    pairs = walk(moves)
    expected = [
        keras_reference(r, pairs) if r.when == "no_improvement" else point_reference(r, pairs)
        for r in PER_RUN_RULES
    ]
    # Small blocks exercise the plateau shortcut; _SMALL = 0 sends every update through numpy
    # (by default updates of a few points take the Python path and the whole run numpy's).
    block, small = (2, 0) if tiny else (rules_module._BLOCK, rules_module._SMALL)
    with (
        mock.patch.object(rules_module, "_BLOCK", block),
        mock.patch.object(rules_module, "_SMALL", small),
    ):
        whole, chunked = RunStore(), RunStore()
        feed(whole, "r", points("m", pairs))
        once = RuleEngine(PER_RUN_RULES)
        once.evaluate(whole, now=0)
        engine = RuleEngine(PER_RUN_RULES)
        start, i = 0, 0
        while start < len(pairs):
            size = cuts[i % len(cuts)]
            feed(chunked, "r", points("m", pairs[start : start + size]))
            engine.evaluate(chunked, ["r"], now=0)
            start, i = start + size, i + 1
    got = [(v.state, v.step) for v in engine.verdicts("r")]
    assert got == expected
    assert once.verdicts("r") == engine.verdicts("r")
    assert {v.rule for _, v in engine.take_new_triggers()} == {
        r.name for r, (state, _) in zip(PER_RUN_RULES, expected) if state == "triggered"
    }


def median_reference(
    histories: dict[str, list[tuple[float, float]]], rule_: Rule, done: dict[str, Verdict]
) -> dict[str, tuple[str, float | None]]:
    """The median rule evaluated naively over every run (sticky through ``done``)."""
    sign = -1.0 if rule_.mode == "max" else 1.0
    effective: dict[str, list[tuple[float, float]]] = {}
    for key, pairs in histories.items():
        timeline: list[tuple[float, float]] = []
        for step, value in pairs:
            if timeline and step < timeline[-1][0]:
                timeline = [p for p in timeline if p[0] < step]
            timeline.append((step, value))
        effective[key] = timeline

    def best(key: str, at: float) -> float | None:
        timeline = effective[key]
        if not timeline or timeline[-1][0] < at:
            return None
        values = [sign * v for s, v in timeline if s <= at and math.isfinite(v)]
        return min(values) if values else None

    out: dict[str, tuple[str, float | None]] = {}
    for key, timeline in effective.items():
        if key in done:
            out[key] = ("triggered", done[key].step)
            continue
        if not timeline:
            out[key] = ("waiting", None)
            continue
        step = timeline[-1][0]
        own = best(key, step)
        if (rule_.after_step is not None and step < rule_.after_step) or own is None:
            out[key] = ("waiting", None)
            continue
        others = sorted(b for k in effective if k != key and (b := best(k, step)) is not None)
        if len(others) < rule_.min_runs:
            out[key] = ("waiting", None)
            continue
        middle = len(others) // 2
        median = others[middle] if len(others) % 2 else (others[middle - 1] + others[middle]) / 2
        out[key] = ("triggered", step) if own > median else ("ok", None)
    return out


@settings(max_examples=150, deadline=None)
@given(
    runs=st.lists(STEPS, min_size=2, max_size=6),
    order=st.lists(st.integers(0, 5), min_size=1, max_size=80),
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=10),
    mode=st.sampled_from(["min", "max"]),
    min_runs=st.integers(1, 3),
    keyed=st.booleans(),
    small=st.sampled_from([0, 2, 32]),
)
def test_median_rule_matches_a_naive_reference_at_every_evaluation(
    runs: list[list[tuple[int, float]]],
    order: list[int],
    sizes: list[int],
    mode: str,
    min_runs: int,
    keyed: bool,
    small: int,
) -> None:
    with mock.patch.object(rules_module, "_SMALL", small):
        check_median_against_reference(
            runs, order, sizes, rule_=median_rule(min_runs, mode, 3), keyed=keyed
        )


def check_median_against_reference(
    runs: list[list[tuple[int, float]]],
    order: list[int],
    sizes: list[int],
    rule_: Rule,
    keyed: bool,
) -> None:
    pending = {f"run{i}": walk(moves) for i, moves in enumerate(runs)}
    fed: dict[str, list[tuple[float, float]]] = {key: [] for key in pending}
    store, engine = RunStore(), RuleEngine([rule_])
    done: dict[str, Verdict] = {}
    for turn, pick in enumerate(order):
        key = f"run{pick % len(runs)}"
        size = sizes[turn % len(sizes)]
        chunk, pending[key] = pending[key][:size], pending[key][size:]
        if not chunk:
            continue
        feed(store, key, points("val_loss", chunk))
        fed[key].extend(chunk)
        engine.evaluate(store, [key] if keyed else None, now=0)
        expected = median_reference({k: v for k, v in fed.items() if v}, rule_, done)
        for other, (state, step) in expected.items():
            verdict = engine.verdicts(other)[0]
            assert (verdict.state, verdict.step) == (state, step), (other, fed)
            if state == "triggered":
                done[other] = verdict
