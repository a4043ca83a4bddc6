"""Generate the committed native sample runs under ``sample_runs/``.

Deterministic by construction: every random number comes from a seeded ``random.Random``,
every timestamp from a fixed base, and the PNG is written with stored (uncompressed) deflate
blocks so its bytes do not depend on the zlib build. Re-running produces identical files;
``tests/test_samples.py`` checks that the committed files are exactly what this script
writes.

Usage: ``python sample_runs/make_native.py [OUT] [--fixtures DIR]`` (defaults: the directory
of this script and ``tests/fixtures``). Only the entries named in :data:`GENERATED` (under
OUT) and :data:`FIXTURES` (under DIR) are removed and rewritten; ``foreign/`` and the
scripts are left alone. The hostile run is a test fixture, not a showcase: a newcomer's
first view should not open on escape sequences.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import struct
import sys
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GENERATED = ("sweep", "diverged", "plateaued", "shapes", "valohai", "tracktui.toml")
"""Top-level entries of OUT this script owns (and deletes before writing them again)."""

FIXTURES = ("hostile",)
"""Top-level entries of the fixtures directory this script owns."""

BASE_TIME = 1714554000.0
"""2024-05-01T09:00:00Z: every sample timestamp is an offset from it."""

DEAD_PID = 4194301
"""A pid from the far end of Linux's pid space; its create time below can match nothing."""

DEAD_CREATE_TIME = 1714553990.25

GIT = {"commit": "3f9c2a7d1e4b5a6c8d0e2f4a6b8c0d2e4f6a8b0c", "dirty": False}
CLASSES = ("cat", "dog", "bird")

Record = dict[str, Any]


def iso(seconds: float) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``."""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jsonl(records: list[Record]) -> bytes:
    """One ``json.dumps`` line per record: Python's spelling, ``NaN`` included."""
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def meta_json(meta: Record) -> bytes:
    """run.json as ``tracktui run`` writes it (indented, ASCII, escapes for the rest)."""
    return (json.dumps(meta, indent=2) + "\n").encode()


def sig(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant digits (keeps the files small)."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def cosine_lr(base: float, step: int, steps: int, warmup: int = 10) -> float:
    """Linear warmup then cosine decay, as most image-classification recipes do."""
    ramp = min(1.0, (step + 1) / warmup)
    return sig(base * ramp * 0.5 * (1 + math.cos(math.pi * step / steps)))


def meta(
    name: str,
    config: Record,
    created: float,
    *,
    run_id: str,
    argv: list[str],
    status: str,
    ended: float | None = None,
    exit_code: int | None = None,
    signal: int | None = None,
    host: str | None = "gpu-node-01",
    tags: Record | None = None,
) -> Record:
    """A run.json as a run that ended long ago (or died without saying so) left it."""
    record: Record = {
        "id": run_id,
        "name": name,
        "created_at": iso(created),
        "status": status,
        "pid": DEAD_PID,
        "pid_create_time": DEAD_CREATE_TIME,
        "pgid": DEAD_PID,
    }
    if host is not None:
        record["host"] = host
    record.update(
        {
            "user": "alice",
            "command": argv,
            "cwd": "/home/alice/projects/cifar",
            "git": GIT,
            "config": config,
            "tags": tags or {},
            "properties": {"dataset": "cifar10", "gpu": "NVIDIA A100-SXM4-40GB"},
        }
    )
    if ended is not None:
        record["ended_at"] = iso(ended)
    if exit_code is not None:
        record["exit_code"] = exit_code
    if signal is not None:
        record["signal"] = signal
    return record


def argv_for(config: Record) -> list[str]:
    """The command line a training script would have been started with."""
    args = ["python", "train.py"]
    for key in ("model", "optimizer", "lr", "batch_size", "dropout", "seed"):
        args += [f"--{key.replace('_', '-')}", str(config[key])]
    return args


def write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# Training curves --------------------------------------------------------------------------
def training_records(
    rng: random.Random,
    *,
    steps: int,
    start: float,
    seconds_per_step: float,
    lr: float,
    rate: float,
    floor: float,
    top: float,
    gap: float,
    every: int = 2,
    eval_every: int = 20,
    steps_per_epoch: int = 50,
) -> tuple[list[Record], float]:
    """Train records every ``every`` steps and validation records every ``eval_every``.

    Loss decays exponentially from ln(10) (ten classes, chance) towards ``floor`` at
    ``rate`` per step; validation trails training by up to ``gap`` as the run overfits.
    Returns the records and the wall time of the last one.
    """
    records: list[Record] = []
    now = start
    for step in range(0, steps + 1, every):
        progress = 1 - math.exp(-rate * step)
        loss = floor + (math.log(10) - floor) * (1 - progress)
        accuracy = 0.1 + (top - 0.1) * progress
        records.append(
            {
                "step": step,
                "_time": iso(now),
                "epoch": step // steps_per_epoch,
                "loss": sig(loss * (1 + 0.04 * rng.gauss(0, 1))),
                "accuracy": sig(min(1.0, max(0.0, accuracy + 0.012 * rng.gauss(0, 1)))),
                "lr": cosine_lr(lr, step, steps),
            }
        )
        if step % eval_every == 0 and step:
            drift = gap * step / steps
            records.append(
                {
                    "step": step,
                    "_time": iso(now + 0.1),
                    "val_loss": sig(loss + drift + 0.02 * rng.gauss(0, 1)),
                    "val_accuracy": sig(accuracy - drift / 3 + 0.006 * rng.gauss(0, 1)),
                }
            )
        now += seconds_per_step * every * (1 + 0.05 * rng.gauss(0, 1))
    return records, now


def epoch_log(records: list[Record], header: str, footer: str) -> bytes:
    """An output.log in the style of a plain training script."""
    lines = [header]
    for record in records:
        if "val_loss" in record:
            lines.append(
                f"step {record['step']:>4}  val_loss {record['val_loss']:.4f}  "
                f"val_accuracy {record['val_accuracy']:.4f}"
            )
    lines.append(footer)
    return ("\n".join(lines) + "\n").encode()


SWEEP = (
    # directory, model, optimizer, lr, batch, dropout, seed, (rate, floor, top, gap, s/step)
    ("resnet-lr0.1", "resnet18", "sgd", 0.1, 128, 0.0, 1, (0.03, 0.25, 0.92, 0.30, 2.1)),
    ("resnet-lr0.01", "resnet18", "sgd", 0.01, 128, 0.1, 2, (0.015, 0.35, 0.89, 0.20, 2.1)),
    ("resnet-lr0.001", "resnet18", "adam", 0.001, 64, 0.1, 3, (0.006, 0.60, 0.81, 0.10, 1.6)),
    ("vit-lr0.001", "vit-tiny", "adamw", 0.001, 256, 0.1, 4, (0.012, 0.40, 0.86, 0.25, 3.4)),
    ("vit-lr0.0003", "vit-tiny", "adamw", 0.0003, 256, 0.2, 5, (0.008, 0.50, 0.84, 0.15, 3.4)),
)


def make_sweep(out: Path) -> None:
    """Five finished runs of a learning-rate sweep over two models."""
    for index, (name, model, optimizer, lr, batch, dropout, seed, curve) in enumerate(SWEEP):
        rate, floor, top, gap, seconds_per_step = curve
        rng = random.Random(seed)
        config = {
            "lr": lr,
            "batch_size": batch,
            "optimizer": optimizer,
            "model": model,
            "seed": seed,
            "dropout": dropout,
            "weight_decay": 5e-4 if optimizer == "sgd" else 0.05,
            "scheduler": {"name": "cosine", "warmup_steps": 10},
        }
        start = BASE_TIME + index * 600
        records, end = training_records(
            rng,
            steps=300,
            start=start,
            seconds_per_step=seconds_per_step,
            lr=lr,
            rate=rate,
            floor=floor,
            top=top,
            gap=gap,
        )
        run = out / "sweep" / name
        write(run / "metrics.jsonl", jsonl(records))
        write(
            run / "output.log",
            epoch_log(records, f"training {model} with {optimizer} lr={lr}", "training finished"),
        )
        write(
            run / "run.json",
            meta_json(
                meta(
                    name,
                    config,
                    start - 4,
                    run_id=f"sweep-{index:02d}",
                    argv=argv_for(config),
                    status="finished",
                    ended=end + 2,
                    exit_code=0,
                    tags={"sweep": "lr-2024-05", "model": model},
                )
            ),
        )


def make_diverged(out: Path) -> None:
    """Learning rate too high: loss falls, then grows, overflows and turns NaN; then a crash.

    run.json still says ``running`` (the process died before it could record an end), with
    no ``ended_at`` and a dead pid: the evidence says crashed. No ``host``, so the pid is
    judged on whichever machine opens the samples.
    """
    rng = random.Random(6)
    config = {
        "lr": 0.8,
        "batch_size": 128,
        "optimizer": "sgd",
        "model": "resnet18",
        "seed": 6,
        "dropout": 0.0,
        "weight_decay": 5e-4,
        "scheduler": {"name": "constant", "warmup_steps": 10},
    }
    start = BASE_TIME + 5400
    now = start
    records: list[Record] = []
    nan = math.nan
    for step in range(0, 141, 2):
        healthy = 0.4 + (math.log(10) - 0.4) * math.exp(-0.04 * step)
        if step < 100:
            blowup = math.exp(0.09 * max(0, step - 50))
            loss = sig(healthy * blowup * (1 + 0.05 * rng.gauss(0, 1)))
            grad_norm = sig(1.2 * blowup**2 * (1 + 0.1 * abs(rng.gauss(0, 1))))
            if step >= 96:
                grad_norm = math.inf
            accuracy = 0.1 + 0.55 * (1 - math.exp(-0.04 * step)) / blowup
        else:
            loss, grad_norm, accuracy = nan, nan, 0.1
        records.append(
            {
                "step": step,
                "_time": iso(now),
                "loss": loss,
                "accuracy": sig(max(0.0, accuracy + 0.01 * rng.gauss(0, 1))),
                "lr": sig(0.8 * min(1.0, (step + 1) / 10)),
                "grad_norm": grad_norm,
            }
        )
        if step % 20 == 0 and step:
            records.append(
                {
                    "step": step,
                    "_time": iso(now + 0.1),
                    "val_loss": sig(loss * 1.1) if step < 100 else nan,
                    "val_accuracy": sig(max(0.1, accuracy - 0.03)),
                }
            )
        now += 2.2 * (1 + 0.05 * rng.gauss(0, 1))
    run = out / "diverged"
    write(run / "metrics.jsonl", jsonl(records))
    log = [
        "training resnet18 with sgd lr=0.8",
        "step   80  grad_norm above 100: consider gradient clipping",
        "WARNING: non-finite loss at step 100",
        "Traceback (most recent call last):",
        '  File "train.py", line 212, in <module>',
        "    loss.backward()",
        "RuntimeError: Function 'LogSoftmaxBackward0' returned nan values in its 0th output.",
    ]
    write(run / "output.log", ("\n".join(log) + "\n").encode())
    write(
        run / "run.json",
        meta_json(
            meta(
                "resnet-lr0.8",
                config,
                start - 4,
                run_id="diverged-00",
                argv=argv_for(config),
                status="running",
                host=None,
                tags={"sweep": "lr-2024-05", "model": "resnet18"},
            )
        ),
    )


def make_plateaued(out: Path) -> None:
    """val_accuracy stops improving after ~150 steps; the user stopped it with Ctrl-C."""
    rng = random.Random(7)
    config = {
        "lr": 0.003,
        "batch_size": 64,
        "optimizer": "adam",
        "model": "resnet34",
        "seed": 7,
        "dropout": 0.5,
        "weight_decay": 0.0,
        "scheduler": {"name": "constant", "warmup_steps": 0},
    }
    start = BASE_TIME + 7200
    now = start
    records: list[Record] = []
    best = 0.0
    for step in range(0, 401, 2):
        loss = 0.15 + (math.log(10) - 0.15) * math.exp(-0.012 * step)
        records.append(
            {
                "step": step,
                "_time": iso(now),
                "loss": sig(loss * (1 + 0.03 * rng.gauss(0, 1))),
                "accuracy": sig(min(1.0, 0.1 + 0.85 * (1 - math.exp(-0.012 * step)))),
                "lr": 0.003,
            }
        )
        if step % 10 == 0 and step:
            if step <= 150:
                val_accuracy = sig(0.1 + 0.64 * (1 - math.exp(-0.03 * step)))
                best = max(best, val_accuracy)
            else:
                # Noise below the best value: never an improvement, so the rule triggers.
                val_accuracy = sig(best - 0.002 - 0.004 * abs(rng.gauss(0, 1)))
            records.append(
                {
                    "step": step,
                    "_time": iso(now + 0.1),
                    "val_loss": sig(0.85 + 1.4 * math.exp(-0.03 * step) + 0.0012 * step),
                    "val_accuracy": val_accuracy,
                }
            )
        now += 2.0 * (1 + 0.05 * rng.gauss(0, 1))
    run = out / "plateaued"
    write(run / "metrics.jsonl", jsonl(records))
    write(
        run / "output.log",
        epoch_log(records, "training resnet34 with adam lr=0.003", "^CKeyboardInterrupt"),
    )
    write(
        run / "run.json",
        meta_json(
            meta(
                "resnet34-plateau",
                config,
                start - 4,
                run_id="plateaued-00",
                argv=argv_for(config),
                status="killed",
                ended=now,
                signal=2,
                tags={"model": "resnet34"},
            )
        ),
    )


# Every value shape -------------------------------------------------------------------------
def confusion(step: int, steps: int, rng: random.Random) -> list[list[int]]:
    """A 3x3 confusion matrix (50 samples per class) that sharpens as training goes on."""
    skill = 0.35 + 0.55 * step / steps
    matrix = []
    for actual in range(3):
        right = round(50 * min(0.97, skill + 0.05 * rng.gauss(0, 1)))
        wrong = 50 - right
        first = rng.randint(0, wrong)
        row = [0, 0, 0]
        row[actual] = right
        row[(actual + 1) % 3] = first
        row[(actual + 2) % 3] = wrong - first
        matrix.append(row)
    return matrix


def stored_zlib(data: bytes) -> bytes:
    """A zlib stream of stored deflate blocks: identical bytes whatever zlib is installed."""
    out = bytearray(b"\x78\x01")
    chunks = [data[i : i + 65535] for i in range(0, len(data), 65535)] or [b""]
    for i, block in enumerate(chunks):
        final = 1 if i == len(chunks) - 1 else 0
        out += struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF) + block
    out += struct.pack(">I", zlib.adler32(data))
    return bytes(out)


def png(pixels: list[list[tuple[int, int, int]]]) -> bytes:
    """An 8-bit RGB PNG of ``pixels`` (rows of (r, g, b))."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", stored_zlib(raw))
        + chunk(b"IEND", b"")
    )


def heatmap(matrix: list[list[int]], cell: int = 8) -> bytes:
    """The confusion matrix as a small blue heatmap PNG."""
    peak = max(max(row) for row in matrix) or 1
    pixels = []
    for row in matrix:
        line = []
        for value in row:
            shade = round(255 * value / peak)
            line.extend([(255 - shade, 255 - shade // 2, 255)] * cell)
        pixels.extend([line] * cell)
    return png(pixels)


def make_shapes(out: Path) -> None:
    """Every value shape of DESIGN.md §3, logged over steps, plus a media/ folder."""
    rng = random.Random(8)
    steps = 200
    config = {
        "lr": 0.05,
        "batch_size": 128,
        "optimizer": "sgd",
        "model": "resnet18",
        "seed": 8,
        "dropout": 0.1,
        "classes": list(CLASSES),
    }
    start = BASE_TIME + 10800
    now = start
    records: list[Record] = [
        {
            "step": 0,
            "_time": iso(now),
            "model_layout": "conv3x3-64 > 4x[basic-block] > avgpool > fc-3 > softmax",
        }
    ]
    matrix: list[list[int]] = []
    for step in range(0, steps + 1, 2):
        progress = 1 - math.exp(-0.02 * step)
        loss = 0.3 + (math.log(3) - 0.3) * (1 - progress)
        records.append(
            {
                "step": step,
                "_time": iso(now),
                "train": {
                    "loss": sig(loss * (1 + 0.04 * rng.gauss(0, 1))),
                    "accuracy": sig(0.33 + 0.6 * progress),
                },
                "lr": cosine_lr(0.05, step, steps),
            }
        )
        if step % 20 == 0 and step:
            matrix = confusion(step, steps, rng)
            per_class = [round(matrix[i][i] / 50, 4) for i in range(3)]
            support = [sum(matrix[r][c] for r in range(3)) for c in range(3)]
            precision = [round(matrix[c][c] / (support[c] or 1), 4) for c in range(3)]
            false_pos = [support[c] - matrix[c][c] for c in range(3)]
            false_neg = [50 - matrix[c][c] for c in range(3)]
            picsellia = [[*row, false_neg[i]] for i, row in enumerate(matrix)]
            picsellia.append([*false_pos, 0])
            threshold = [round(0.1 * i, 1) for i in range(11)]
            records.append(
                {
                    "step": step,
                    "_time": iso(now + 0.1),
                    "val": {"loss": sig(loss + 0.05), "accuracy": sig(sum(per_class) / 3)},
                    "phase": "warmup" if step <= 20 else "main" if step < 180 else "finetune",
                    "confusion": matrix,
                    "confusion_labeled": [list(CLASSES), *matrix],
                    "confusion_triples": [
                        [CLASSES[r], CLASSES[c], matrix[r][c]] for r in range(3) for c in range(3)
                    ],
                    "confusion_fp_fn": {"categories": list(CLASSES), "values": picsellia},
                    "class_accuracy": per_class,
                    "predicted_per_class": {"x": list(CLASSES), "y": support},
                    "precision_recall": {
                        "steps": [sig(1 - t * progress) for t in threshold],
                        "values": [sig(0.5 + 0.45 * t * progress) for t in threshold],
                    },
                    "per_class": {
                        "class": list(CLASSES),
                        "precision": precision,
                        "recall": per_class,
                        "support": [50, 50, 50],
                    },
                }
            )
        now += 1.5 * (1 + 0.05 * rng.gauss(0, 1))
    run = out / "shapes"
    write(run / "metrics.jsonl", jsonl(records))
    write(run / "media" / "confusion_step200.png", heatmap(matrix))
    write(
        run / "media" / "predictions.txt",
        b"image,actual,predicted\n0001.png,cat,cat\n0002.png,dog,cat\n0003.png,bird,bird\n",
    )
    write(
        run / "run.json",
        meta_json(
            meta(
                "shapes",
                config,
                start - 4,
                run_id="shapes-00",
                argv=[*argv_for(config), "--log-everything"],
                status="finished",
                ended=now,
                exit_code=0,
                tags={"demo": "value-shapes"},
            )
        ),
    )


# Hostile input -------------------------------------------------------------------------------
ESC_RED = "\x1b[31m"
CLEAR = "\x1b[2J"
OSC52 = "\x1b]52;c;aGFja2VkIQ==\x07"  # would put "hacked!" on the clipboard
BIDI = "\u202e"


def make_hostile(out: Path) -> None:
    """Malformed lines and strings built to attack a terminal UI, mixed with good records.

    Every hostile string appears in keys, values, the run name, config values and the log.
    Inside JSON they are escaped so the line is still valid JSON; output.log has raw bytes.
    """
    rng = random.Random(13)
    start = BASE_TIME + 14400
    good = [
        {
            "step": step,
            "_time": iso(start + 0.4 * step),
            "loss": sig(2.0 * math.exp(-0.02 * step) + 0.2 + 0.02 * rng.gauss(0, 1)),
            "accuracy": sig(0.2 + 0.6 * (1 - math.exp(-0.02 * step))),
        }
        for step in range(0, 101, 2)
    ]
    hostile: list[bytes] = [
        json.dumps(
            {
                "step": 0,
                f"{ESC_RED}red_key\x1b[0m": 1.0,
                "[bold red]markup_key[/]": 2.0,
                "[/]": 3.0,
                "[@click=app.quit]click_key": 4.0,
                f"clip{OSC52}": 5.0,
                f"{CLEAR}clear_key": 6.0,
                f"loss{BIDI}evil": 7.0,
                "c1\x9b31mkey\x00nul": 8.0,
            }
        ).encode(),
        json.dumps({"step": 1, 'quote"key': 9.0, "back\\slash\\key": 10.0}).encode(),
        json.dumps(
            {
                "step": 2,
                "model_layout": f"{OSC52}{CLEAR}{ESC_RED}[bold red]layout[/] [@click=app.quit]x",
                "note": f"file{BIDI}txt.exe",
            }
        ).encode(),
        json.dumps({"step": 4, "note": "raw bidi \u202e inside JSON"}, ensure_ascii=False).encode(),
        b'{"step": 6, "loss": 0.',  # torn write
        b"garbage that is not JSON at all",
        b'{"step": 8, "note": "invalid utf-8 \xff\xfe\xc3("}',
        b"[1, 2, 3]",
        b"null",
        b'"a string"',
        b'{"step": 10, "loss": true}',
        b'{"step": 12, "loss": nan}',
        b'{"deep": ' + b"[" * 20000 + b"]" * 20000 + b"}",
        b'{"deep_nan": ' + b"[" * 5000 + b"NaN" + b"]" * 5000 + b"}",
        json.dumps(
            {"step": 14, "nested": _nest(12, {"value": 1.0}), "ok": {"depth": {"two": 0.5}}}
        ).encode(),
        b'{"step": 16, "loss": 1.5}\r',  # CRLF line ending
        b"",
        b"   ",
        b"}{",
    ]
    lines = [json.dumps(r).encode() for r in good[:20]]
    lines += hostile
    lines += [json.dumps(r).encode() for r in good[20:]]
    lines.append(b'{"step": 102, "lo')  # partial last line: the writer died mid-record
    run = out / "hostile"
    write(run / "metrics.jsonl", b"\n".join(lines))
    log = [
        b"starting \x1b[31mred\x1b[0m run",
        b"clipboard \x1b]52;c;aGFja2VkIQ==\x07 attack",
        b"clear screen \x1b[2J here",
        b"cursor home \x1b[H and title \x1b]0;pwned\x07",
        b"rich markup [bold red]not bold[/] and [/] and [@click=app.quit]quit[/]",
        b"bidi \xe2\x80\xae evil.exe",
        b"invalid utf-8 \xff\xfe\xc3( bytes",
        b"c1 csi \xc2\x9b31m and nul \x00 and bell \x07 and backspace \x08",
        b"progress 10%\rprogress 50%\rprogress 100%",
        b"tab\tseparated\tvalues",
        b"crlf line\r",
        b"Traceback (most recent call last):",
        b"ValueError: \x1b[1mbad\x1b[0m input",
    ]
    write(run / "output.log", b"\n".join(log) + b"\n")
    config = {
        "lr": 0.01,
        "batch_size": 32,
        "optimizer": f"{ESC_RED}adam\x1b[0m",
        "model": "[bold red]resnet[/]",
        "seed": 13,
        "dropout": 0.1,
        "note": "[@click=app.quit]click me[/]",
        "clipboard": OSC52,
        "bidi": f"safe{BIDI}txt.exe",
        f"{CLEAR}key": "[/]",
    }
    record = meta(
        f"{ESC_RED}hostile\x1b[0m [bold red]run[/] [@click=app.quit]x[/] {BIDI}exe.txt",
        config,
        start - 4,
        run_id="hostile-00",
        argv=["python", "train.py", f"--name={OSC52}", "[@click=app.quit]"],
        status="failed",
        ended=start + 45,
        exit_code=1,
        tags={"[/]": CLEAR, "kind": f"{BIDI}hostile"},
    )
    record["user"] = f"alice{ESC_RED}"
    write(run / "run.json", meta_json(record))


def _nest(depth: int, leaf: Record) -> Record:
    value = leaf
    for level in range(depth):
        value = {f"level{depth - level}": value}
    return value


# Valohai -------------------------------------------------------------------------------------
def make_valohai(out: Path) -> None:
    """A Valohai execution's stdout: log lines, and JSON lines each after a blank line."""
    rng = random.Random(21)
    lines = [
        "Downloading dataset from s3://datasets/cifar10.tar.gz",
        "Extracting 60000 images",
        "",
        json.dumps({"model_layout": "ReLU8x-3xELUx32-softmax8"}),
        "Starting training: 10 epochs, batch size 64",
    ]
    for epoch in range(1, 11):
        progress = 1 - math.exp(-0.35 * epoch)
        loss = sig(0.45 + 1.85 * (1 - progress) + 0.03 * rng.gauss(0, 1))
        record: Record = {
            "epoch": epoch,
            "step": epoch * 100,
            "loss": loss,
            "accuracy": sig(0.1 + 0.82 * progress),
            "val_loss": sig(loss + 0.08),
            "val_accuracy": sig(0.1 + 0.78 * progress),
            "grad_norm": math.nan if epoch == 6 else sig(2.0 * (1 - progress) + 0.4),
        }
        lines.append(f"Epoch {epoch}/10")
        if epoch == 6:
            lines.append("WARNING: gradient overflow, skipping optimizer step")
        lines += ["", json.dumps(record)]
    lines += [
        "Evaluating on the test set",
        "",
        json.dumps({"data": [[3, 0, 0], [0, 1, 2], [2, 1, 3]]}),
        "Saved model to /valohai/outputs/model.pt",
    ]
    write(out / "valohai" / "train.log", ("\n".join(lines) + "\n").encode())


RULES = """\
# Early-stopping rules for the sample runs (DESIGN.md §7). tracktui reads ROOT/tracktui.toml.

[[rule]]
name = "diverged"
metric = "loss"
when = "nonfinite"            # NaN or +-inf seen
action = "kill"               # acts only with --auto-kill; otherwise the run is flagged

[[rule]]
name = "exploding"
metric = "loss"
when = "above"
value = 10.0
after_step = 50

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
after_step = 100
min_runs = 3

[[rule]]
name = "stalled"
when = "stalled"
seconds = 900
"""


def clear(out: Path, names: tuple[str, ...]) -> None:
    """Remove the entries ``names`` of ``out`` (creating ``out`` if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def generate(out: Path, fixtures: Path) -> None:
    """Remove and rewrite :data:`GENERATED` under ``out`` and :data:`FIXTURES` under
    ``fixtures``."""
    clear(out, GENERATED)
    clear(fixtures, FIXTURES)
    make_sweep(out)
    make_diverged(out)
    make_plateaued(out)
    make_shapes(out)
    make_hostile(fixtures)
    make_valohai(out)
    write(out / "tracktui.toml", RULES.encode())


def main(argv: list[str] | None = None) -> int:
    """Command line: ``make_native.py [OUT] [--fixtures DIR]``."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=here, help="target")
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=here.parent / "tests" / "fixtures",
        help="target of the test fixtures (the hostile run)",
    )
    args = parser.parse_args(argv)
    generate(args.out, args.fixtures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
