"""Follow one growing file, and the generations rotation leaves beside it, losing no line.

A :class:`FileTail` follows a path by name. Every file it reads there (one inode) is a
*generation*, remembered by its identity (device, inode), its offset and two fingerprints:
its first bytes and the bytes just before the offset. A file truncated and rewritten past
the offset is therefore recognised as new even when its first bytes are the old ones (a
restart with a fixed seed), instead of being read from the middle of a line.

- Each :meth:`FileTail.read` returns complete lines of one generation. A partial last line
  waits for its newline; if none comes within ``INCOMPLETE_AFTER`` seconds it is reported
  once as an incomplete final record and never parsed.
- When the name stops leading to the file being read (rename rotation, deletion,
  replacement), the old descriptor is kept and drained until it has been quiet for
  ``DRAIN_GRACE`` seconds, so a writer that has not reopened yet loses nothing. Rotated
  siblings in the same directory (``train.log.1``, ``train.log-20260101``) are recognised
  by inode: a generation that came and went between two reads is read from one of them,
  as is the rest of a file that copytruncate emptied.
- Where lines may still have been missed (a truncation with no copy beside the file, a
  generation that disappeared before it was read to the end) a note says ``possible gap``
  with the file and the time; nothing is lost silently.
- Lines longer than ``max_line`` are skipped with a note while memory stays bounded; runs
  of NUL bytes (a sparse rewrite) are skipped and counted; a line rewritten with carriage
  returns (a tqdm progress bar) keeps only what a terminal would show last.

Files are opened read-only with ``O_NOFOLLOW|O_NONBLOCK``, must be regular, and are never
mapped.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tui.core.timefmt import utc_iso

FINGERPRINT = 64
"""Bytes at the start of a file that identify it across polls."""

WINDOW = 64
"""Bytes just before the read offset that must still be there for reading to go on."""

MAX_LINE = 4 * 1024 * 1024
"""Longest line kept, in bytes; longer lines are skipped and noted."""

READ_CHUNK = 4 * 1024 * 1024
"""Default most bytes consumed from one file in one call."""

INCOMPLETE_AFTER = 30.0
"""Seconds a partial last line may wait before it is reported as incomplete."""

DRAIN_GRACE = 10.0
"""Seconds a rotated-away file is still read after it last grew (late writers)."""

MAX_GENERATIONS = 64
"""Most unseen rotated generations picked up in one look beside the file."""

FORGET_AFTER = 10.0
"""Seconds a rotated file must be missing from the directory before it is forgotten.

A directory listed while a writer renames files in it can miss an entry; forgetting a
generation at once would have it read again, as new, when it shows up in the next listing.
"""

MARKS = 8
"""Read ends remembered per file, to recognise copies of its start."""

FRESH_DIRECTORY = 1.0
"""Seconds after a change of the file's directory during which reads look beside it."""

_OPEN_FLAGS = (
    os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
)
_BOM = b"\xef\xbb\xbf"
# What rotation appends to a name: logging's ".1", logrotate's "-20260101", dated suffixes.
_ROTATED_SUFFIX = re.compile(r"[.-]\d[\w.-]*")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".z")
_SHORT_NUMBER = re.compile(r"\.(\d{1,4})$")
_LONE_CR = re.compile(rb"\r(?!\n)")
"""A carriage return that does not end a CRLF line: a progress bar redrawing its line."""

_BULK = 64 * 1024
"""Chunks from this size on are scanned by numpy (a pass costs it a few microseconds more
to start, then runs several times faster than ``bytes.count`` or a regex)."""

_SCAN = 256 * 1024
"""Bytes numpy scans at a time (see ``_masks``): fewer calls than smaller blocks, and the
masks stay in cache."""

_KEEP = 1024 * 1024
"""Largest read into a thread's kept buffer (see ``FileTail.read``): a bigger one (a long
file's history) gets fresh memory, given back once it is used up, so that an idle reader
thread holds little."""

_KEPT = threading.local()
"""Each thread's kept read buffer (see ``_read_kept``)."""

_LISTINGS: dict[str, tuple[tuple[int, int], list[str]]] = {}
"""Directories' names, listed when their stamp was the one kept (see ``_listing``)."""

_LISTED_DIRECTORIES = 256
_LISTED_NAMES = 256
"""Most directories whose names are kept, and most names a directory kept may hold."""

Identity = tuple[int, int]


class UnsafeFile(Exception):
    """The path is not a regular file inside the root (FIFO, device, symlink out of ROOT)."""


@dataclass(slots=True)
class Lines:
    """What one read produced: complete lines numbered from ``first_lineno`` (1-based).

    All lines come from one generation of the file, so their numbers are exact. A skipped
    overlong line keeps its number with an empty placeholder, so numbering stays
    contiguous. ``notes`` are human-readable events (truncation, rotation, skips, gaps);
    ``more`` asks the caller to read again soon (the budget ran out, or another generation
    may have lines waiting); ``restarted`` says the followed file changed generation.
    """

    pieces: list[bytes | bytearray | list[bytes]] = field(default_factory=list)
    first_lineno: int = 1
    notes: list[str] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    more: bool = False
    restarted: bool = False
    known: int = 0
    """Lines counted so far; a buffer's may wait in ``tally`` (see ``count``)."""
    tally: _Tally | None = None

    def __bool__(self) -> bool:
        return bool(self.known or self.tally or self.notes or self.skipped)

    @property
    def count(self) -> int:
        """How many lines (a buffer's are counted when first asked, unless ``counted``
        told them)."""
        if self.tally is not None:
            self.known += self.tally.lines()
            self.tally = None
        return self.known

    def counted(self, lines: int) -> None:
        """Tell the lines that ``buffer`` holds (its reader parsed them all), sparing a
        count of its newlines; the numbers of the lines read after it rest on this."""
        if self.tally is not None:
            self.tally.tell(lines)

    def add(self, lines: list[bytes]) -> None:
        """Append already split lines."""
        self.pieces.append(lines)
        self.known += len(lines)

    def add_blob(self, blob: bytes | bytearray, count: int | _Tally) -> None:
        """Append complete lines held in one newline-terminated buffer: ``count`` of them,
        or as many as the tally will find."""
        if self.tally is not None:  # one tally at a time: an earlier buffer's is counted now
            self.known += self.tally.lines()
        self.pieces.append(blob)
        if isinstance(count, int):
            self.known, self.tally = self.known + count, None
        else:
            self.tally = count

    @property
    def lines(self) -> list[bytes]:
        """Every line, without its newline (split on first use)."""
        if len(self.pieces) == 1 and isinstance(self.pieces[0], list):
            return self.pieces[0]
        out: list[bytes] = []
        for piece in self.pieces:
            if isinstance(piece, (bytes, bytearray)):
                split = bytes(piece).split(b"\n")
                split.pop()
                out.extend(split)
            else:
                out.extend(piece)
        if self.tally is not None:  # the buffer's lines, and the lines before it (known)
            self.tally.tell(len(out) - self.known)
        self.pieces = [out]
        return out

    @property
    def blob(self) -> bytes | None:
        """All lines as one newline-separated buffer, when they were read as one (and not
        into the thread's kept buffer: see ``buffer``)."""
        buffer = self.buffer
        return buffer if isinstance(buffer, bytes) else None

    @property
    def buffer(self) -> bytes | bytearray | None:
        """All lines as one newline-separated buffer, when they were read as one: with
        ``FileTail.read(scratch=True)``, maybe the thread's kept buffer, which the next such
        read on the thread overwrites."""
        if len(self.pieces) == 1 and isinstance(self.pieces[0], (bytes, bytearray)):
            return self.pieces[0]
        return None


class _Tally:
    """The lines of one newline-terminated buffer, counted when first asked (or told by
    its reader, who parsed them): a count is a pass over the bytes, and a reader that
    parsed them all knows it already.

    A tally of this thread's kept buffer is counted before the buffer is read into again
    (see ``_read_kept``).
    """

    __slots__ = ("buffer", "found")

    def __init__(self, buffer: bytes | bytearray) -> None:
        self.buffer: bytes | bytearray | None = buffer
        self.found = -1

    def tell(self, lines: int) -> None:
        """The reader found ``lines`` lines in the buffer."""
        if self.found < 0:
            self.found, self.buffer = lines, None

    def lines(self) -> int:
        """The lines of the buffer."""
        if self.buffer is not None:
            self.found, self.buffer = _count_lines(self.buffer), None
        return self.found


def _masks() -> np.ndarray:
    """This thread's kept masks for a pass over a chunk (``2 * _SCAN`` flags): new ones
    would be fresh memory on every read, whose page faults cost more than the pass."""
    kept: np.ndarray | None = getattr(_KEPT, "masks", None)
    if kept is None:
        kept = _KEPT.masks = np.empty(2 * _SCAN, np.bool_)
    return kept


def _count_lines(chunk: bytes | bytearray) -> int:
    """The newlines in ``chunk``."""
    if len(chunk) < _BULK:
        return chunk.count(b"\n")
    codes, newlines = np.frombuffer(chunk, np.uint8), _masks()[:_SCAN]
    count = 0
    for start in range(0, len(codes), _SCAN):
        block = codes[start : start + _SCAN]
        count += int(np.count_nonzero(np.equal(block, 10, out=newlines[: len(block)])))
    return count


def _lone_return(chunk: bytes | bytearray) -> bool:
    """Whether ``chunk`` (which ends with a newline) holds a lone ``\\r``.

    Looked for only when ``chunk`` holds a return at all (memchr): most files hold none,
    and CRLF files hold one on every line.
    """
    if b"\r" not in chunk:
        return False
    if len(chunk) < _BULK:
        return _LONE_CR.search(chunk) is not None
    codes, masks = np.frombuffer(chunk, np.uint8), _masks()
    for start in range(0, len(codes), _SCAN):
        block = codes[start : start + _SCAN]
        ends = np.equal(block, 10, out=masks[: len(block)])
        here = np.equal(block, 13, out=masks[_SCAN : _SCAN + len(block)])
        # A return whose next byte is no newline: within the block, the newlines tell; the
        # block's last byte is followed by the next block's first (the chunk's own last
        # byte is a newline, so there always is one after a return).
        if np.greater(here[:-1], ends[1:], out=here[:-1]).any():
            return True
        if here[-1] and codes[start + len(block)] != 10:
            return True
    return False


def _read_kept(fd: int, size: int, offset: int, lead: bytes = b"") -> bytes | bytearray:
    """``lead + os.pread(fd, size, offset)``, in this thread's kept buffer where that fits.

    The buffer keeps its memory from one read to the next: a new one the size of the read
    is fresh memory, whose page faults cost more than the read (1.5 ms for 5 MiB). Reads
    that would shrink its memory (under half of it) or grow it past ``_KEEP`` get a buffer
    of their own. ``lead`` (the unfinished line read before) is copied in front, which
    spares a copy of the whole read to join them.
    """
    whole = len(lead) + size
    kept: bytearray | None = getattr(_KEPT, "buffer", None)
    if kept is None:
        kept = _KEPT.buffer = bytearray()
    tally: _Tally | None = getattr(_KEPT, "tally", None)
    if tally is not None:  # the lines of the last read, untold: counted before they go
        tally.lines()
        _KEPT.tally = None
    if whole > _KEEP or whole < kept.__alloc__() // 2 or not hasattr(os, "preadv"):
        return lead + os.pread(fd, size, offset)
    try:
        if len(kept) > whole:
            del kept[whole:]
        else:
            kept.extend(bytes(whole - len(kept)))
    except BufferError:  # a view of the last read is still held: it keeps that buffer
        kept = _KEPT.buffer = bytearray(whole)
    kept[: len(lead)] = lead
    with memoryview(kept) as view:
        got = os.preadv(fd, [view[len(lead) :]], offset)
    if got < size:
        del kept[len(lead) + got :]
    return kept


def _listing(directory: Path) -> tuple[tuple[int, int], list[str]]:
    """The stamp (inode, mtime) of ``directory`` and the names in it.

    Shared by the tails of files in one directory (DVCLive's, one per metric), which list
    it once while it is unchanged: a name added, removed or renamed changes its mtime. A
    stamp less than ``FRESH_DIRECTORY`` seconds old may yet hide a change in the same
    clock tick, and is not trusted.

    Raises:
        OSError: the directory cannot be read.
    """
    info = os.stat(directory)
    stamp = (info.st_ino, info.st_mtime_ns)
    key = os.fspath(directory)
    listed = _LISTINGS.get(key)
    if listed is not None and listed[0] == stamp:
        return listed
    names = os.listdir(directory)
    if time.time() - info.st_mtime >= FRESH_DIRECTORY and len(names) <= _LISTED_NAMES:
        if len(_LISTINGS) >= _LISTED_DIRECTORIES:
            _LISTINGS.clear()
        _LISTINGS[key] = (stamp, names)  # iterated, never changed
    return stamp, names


def open_regular(path: Path, root: Path | None = None) -> int:
    """Open ``path`` read-only, refusing anything that is not a regular file under ``root``.

    A symlink is followed only when its target stays inside ``root``; the target is then
    opened with ``O_NOFOLLOW`` so a swap between check and open cannot redirect us.
    """
    target = path
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        if root is None:
            raise UnsafeFile(f"{path.name}: symbolic link refused")
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(os.path.realpath(root)):
            raise UnsafeFile(f"{path.name}: symbolic link leads outside the root")
        info = os.lstat(target)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{path.name}: not a regular file (FIFO, device or directory)")
    fd = os.open(target, _OPEN_FLAGS)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFile(f"{path.name}: not a regular file")
    return fd


def last_segment(line: bytes) -> bytes:
    """What a terminal shows of a line rewritten with carriage returns (tqdm progress).

    A trailing ``\\r`` (a CRLF ending) is dropped; of the rest, the last segment that is not
    blank is kept (tqdm clears a bar with spaces before the line that replaces it).
    """
    body = line.rstrip(b"\r")
    if b"\r" not in body:
        return body
    for segment in reversed(body.split(b"\r")):
        if segment.strip():
            return segment
    return b""


@dataclass(eq=False)
class _Generation:
    """One file (one inode) read from: the position in it and how to recognise it.

    ``head`` holds the first bytes read (up to ``FINGERPRINT``), ``window`` the bytes just
    before ``offset`` (up to ``WINDOW``): both are bytes already consumed, so a file that
    still holds them is the same file, grown. ``marks`` keep the window at the end of the
    last few reads, to recognise a copy that ends before ``offset``. ``history`` marks a
    rotated file that was already there when following began (older than us, never read).
    ``counted`` lines were consumed, and those of the last read's buffer wait in ``tally``
    (see ``lineno``).
    """

    identity: Identity
    fd: int | None
    label: str
    offset: int = 0
    counted: int = 0
    tally: _Tally | None = None
    partial: bytes = b""
    skipping: int = 0
    head: bytes = b""
    window: bytes = b""
    marks: list[tuple[int, bytes]] = field(default_factory=list)
    grew_at: float = 0.0
    until: float = 0.0
    noted: bool = False
    history: bool = False

    @property
    def lineno(self) -> int:
        """Lines consumed (the last read's counted now, if its reader did not tell them)."""
        if self.tally is not None:
            self.counted += self.tally.lines()
            self.tally = None
        return self.counted

    @lineno.setter
    def lineno(self, value: int) -> None:
        self.counted, self.tally = value, None

    def count_later(self, tally: _Tally) -> None:
        """Add the lines of a buffer just consumed when they are first asked for."""
        self.counted, self.tally = self.lineno, tally

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def matches(self, fd: int, size: int) -> bool:
        """Whether the open file ``fd`` of ``size`` bytes still holds what was consumed."""
        if size < self.offset:
            return False
        if self.head and os.pread(fd, len(self.head), 0) != self.head:
            return False
        window = self.window
        return not window or os.pread(fd, len(window), self.offset - len(window)) == window

    def holds_prefix(self, fd: int, size: int) -> bool:
        """Whether the file ``fd`` of ``size`` bytes is a copy of the start of this one."""
        if not self.offset or not size:
            return False
        head = self.head[:size]
        if os.pread(fd, len(head), 0) != head:
            return False
        marks = [mark for mark in self.marks if mark[0] <= size]
        if not marks:
            return size <= len(self.head)
        offset, window = marks[-1]
        return os.pread(fd, len(window), offset - len(window)) == window

    def restart(self, now: float) -> None:
        """Forget the position: the file is read again from byte 0."""
        self.offset = self.lineno = self.skipping = 0
        self.partial = self.head = self.window = b""
        self.marks = []
        self.grew_at, self.noted = now, False

    def pending(self) -> int:
        """Bytes of an unfinished last line (buffered or being skipped)."""
        return len(self.partial) or self.skipping


def _age(entry: tuple[str, os.stat_result]) -> tuple[int, int, str]:
    """Oldest first: by last write, then logging's numbering (``.2`` is older than ``.1``)."""
    name, info = entry
    number = _SHORT_NUMBER.search(name)
    return (info.st_mtime_ns, -int(number.group(1)) if number else 0, name)


class FileTail:
    """Incremental reader of one append-only file and its rotations (see module docstring).

    Args:
        path: the file to follow by name.
        root: symbolic links are followed only when they stay inside this directory.
        max_line: longest line kept, in bytes.
        clock: monotonic seconds (tests inject a fake one to pass timeouts).
    """

    def __init__(
        self,
        path: Path,
        root: Path | None = None,
        *,
        max_line: int = MAX_LINE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.root = root
        self.max_line = max_line
        self._clock = clock
        self.current: _Generation | None = None
        self.draining: list[_Generation] = []
        self.missing = False
        self.error: str | None = None
        self._seen: dict[Identity, _Generation] = {}
        self._stamps: dict[Identity, tuple[int, int]] = {}  # size and mtime at the last look
        self._gone: dict[Identity, float] = {}  # when a known rotated file was last missed
        self._followed = False
        self._directory: tuple[int, int] | None = None

    # Where we are in the followed file (read by callers for budgets and by tests).
    @property
    def fd(self) -> int | None:
        """The descriptor held on the file now at the name, if any."""
        return self.current.fd if self.current is not None else None

    @property
    def offset(self) -> int:
        """Bytes consumed from the file now at the name."""
        return self.current.offset if self.current is not None else 0

    @property
    def lineno(self) -> int:
        """Lines consumed from the file now at the name."""
        return self.current.lineno if self.current is not None else 0

    @property
    def partial(self) -> bytes:
        """The buffered start of an unfinished last line."""
        return self.current.partial if self.current is not None else b""

    def close(self) -> None:
        """Release every descriptor; the next read reopens and re-verifies identity.

        Rotated-away generations still being drained are found again by inode.
        """
        if self.current is not None:
            self.current.close()
        for gen in self.draining:
            gen.close()

    # Reading ---------------------------------------------------------------------------
    def read(self, max_bytes: int = READ_CHUNK, *, scratch: bool = False) -> Lines:
        """Return complete lines added since the last call (at most ``max_bytes`` read).

        Older generations come first: while one still yields lines, the result holds only
        those and asks for another read (``more``).

        With ``scratch``, the bytes are read into this thread's kept buffer (no fresh
        memory for a big read), and the lines' ``buffer`` may be that buffer: it must be
        used up before the next read with ``scratch`` on this thread, which overwrites it.
        """
        now = self._clock()
        out = Lines(first_lineno=self.lineno + 1)
        self._follow(out, now)
        if self._followed and (
            any(gen.fd is None for gen in self.draining) or self._directory_changed()
        ):
            self._settle(self._look_beside(out, now), out, now)
        quiet: set[int] = set()  # draining files that neither grew nor shrank: one fstat
        for gen in list(self.draining):
            if gen in self.draining and gen.fd is not None:
                size = os.fstat(gen.fd).st_size
                if size == gen.offset:
                    quiet.add(id(gen))
                else:
                    self._check_rewritten(gen, out, now, size)
        for gen in list(self.draining):
            if gen.fd is None:
                continue  # not found beside the file yet: looked for again next time
            out.first_lineno = gen.lineno + 1
            produced = out.count, len(out.skipped)
            if id(gen) not in quiet and self._consume(gen, out, max_bytes, now, scratch):
                gen.until = max(gen.until, now + DRAIN_GRACE)
                if (out.count, len(out.skipped)) != produced:
                    out.more = True
                    return out
            elif now >= gen.until:
                self._retire(gen, out)
        current = self.current
        out.first_lineno = self.lineno + 1
        if (
            current is not None
            and current.fd is not None
            and not self._consume(current, out, max_bytes, now, scratch)
        ):
            self._note_incomplete(current, out, now)
        return out

    def _follow(self, out: Lines, now: float) -> None:
        """Bring ``current`` in line with what the name leads to now."""
        gen = self.current
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            self._set_error(f"{self.path.name}: {exc.strerror or exc}", out)
            return
        identity = None if info is None else (info.st_dev, info.st_ino)
        if gen is not None and identity == gen.identity:
            if gen.fd is None and not self._reopen(gen):
                return
            self._check_rewritten(gen, out, now)
            return
        if gen is not None:
            # Renamed away, deleted or replaced: what the old descriptor still reads of it
            # is drained before the new file; without a descriptor it is found by inode.
            self.current = None
            gen.until = now + DRAIN_GRACE
            self.draining.append(gen)
            if identity is None:
                out.notes.append(f"{self.path.name} was deleted; history kept, waiting for it")
        if identity is None:
            self.missing = True
            if gen is None:
                return
        elif not self._open_current(out, now):
            return
        # A generation ended or a new one began. The new file is open first, so that a copy
        # of it beside it is known for one.
        if gen is not None and gen.fd is not None:
            self._check_rewritten(gen, out, now)
        self._settle(self._look_beside(out, now), out, now)

    def _open_current(self, out: Lines, now: float) -> bool:
        """Open the file at the name; False when it cannot be, or on the very first open
        (when the rotated files beside it are history, not generations to read)."""
        try:
            fd = open_regular(self.path, self.root)
        except FileNotFoundError:
            self.missing = True
            return False
        except UnsafeFile as exc:
            self._set_error(str(exc), out)
            return False
        except OSError as exc:
            self._set_error(f"{self.path.name}: {exc.strerror or exc}", out)
            return False
        info = os.fstat(fd)
        identity = (info.st_dev, info.st_ino)
        first = not self._followed
        returned = next((g for g in self.draining if g.identity == identity), None)
        if returned is not None:  # renamed away and back: carry on where it was
            self.draining.remove(returned)
            if returned.fd is None:
                returned.fd = fd
            else:
                os.close(fd)
            returned.label = self.path.name
            self.current = returned
            out.notes.append(f"{self.path.name} reappeared")
            self._check_rewritten(returned, out, now)
        else:
            gen = _Generation(identity, fd, self.path.name, grew_at=now)
            self.current = gen
            self._seen[identity] = gen
            if first:
                self._look_beside(out, now, history=True)
            else:
                out.notes.append(
                    f"{self.path.name} reappeared"
                    if self.missing
                    else f"{self.path.name} was replaced (rotated or recreated); reading the new file"
                )
                out.restarted = True
        self._followed = True
        self.missing, self.error = False, None
        return not first

    def _reopen(self, gen: _Generation) -> bool:
        """Reopen the file at the name for ``gen`` after :meth:`close` (same inode)."""
        try:
            fd = open_regular(self.path, self.root)
        except (UnsafeFile, OSError):
            return False  # the next read looks again
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != gen.identity:
            os.close(fd)
            return False
        gen.fd = fd
        return True

    def _check_rewritten(
        self, gen: _Generation, out: Lines, now: float, size: int | None = None
    ) -> None:
        """Restart ``gen`` from byte 0 when its file no longer holds the bytes consumed.

        The bytes it held beyond the offset may survive in a copy beside it (copytruncate);
        they are read from there first. Otherwise they may be lost: a ``possible gap``.
        ``size``: the file's size, when the caller has just asked.
        """
        assert gen.fd is not None
        if gen.matches(gen.fd, os.fstat(gen.fd).st_size if size is None else size):
            return
        ghost = _Generation(
            gen.identity,
            None,
            gen.label,
            offset=gen.offset,
            counted=gen.lineno,
            partial=gen.partial,
            skipping=gen.skipping,
            head=gen.head,
            window=gen.window,
            marks=gen.marks,
            grew_at=now,
            until=now + DRAIN_GRACE,
        )
        gen.restart(now)
        out.restarted = out.restarted or gen is self.current
        if ghost.offset == 0:
            return
        where = self.draining.index(gen) if gen in self.draining else len(self.draining)
        self.draining.insert(where, ghost)
        self._look_beside(out, now)
        if ghost.fd is not None:
            out.notes.append(
                f"{gen.label} was truncated at byte {ghost.offset:,}; the rest of the old file "
                f"is read from {ghost.label} (copytruncate), then {gen.label} from the start"
            )
            return
        self.draining.remove(ghost)
        out.notes.extend(self._truncated(ghost, gen.label))

    def _truncated(self, gen: _Generation, name: str) -> list[str]:
        """Notes for a generation found rewritten: its unread end may be lost."""
        notes = [
            f"{name} was truncated at byte {gen.offset:,}; re-reading from the start "
            f"(possible gap: lines written past byte {gen.offset:,} before the truncation, "
            f"seen {utc_iso()}, could not be read)"
        ]
        if gen.pending():
            notes.append(self._incomplete(gen))
        return notes

    # Beside the file: rotated generations ----------------------------------------------
    def _directory_changed(self) -> bool:
        """Whether entries beside the file may have changed since the last look.

        A rename or a new file changes the directory's mtime; a stamp less than
        ``FRESH_DIRECTORY`` seconds old is looked at again, because filesystem clocks are
        coarse and two changes within one tick leave one stamp.
        """
        try:
            info = os.stat(self.path.parent)
        except OSError:
            return False
        stamp = (info.st_ino, info.st_mtime_ns)
        return stamp != self._directory or time.time() - info.st_mtime < FRESH_DIRECTORY

    def _siblings(self) -> list[tuple[str, os.stat_result]]:
        """Names and stats of the regular files beside ours named as its rotations, oldest
        first."""
        name = self.path.name
        found: list[tuple[str, os.stat_result]] = []
        try:
            self._directory, names = _listing(self.path.parent)
        except OSError:
            return []
        for entry in names:
            if (
                not entry.startswith(name)
                or _ROTATED_SUFFIX.fullmatch(entry, len(name)) is None
                or entry.lower().endswith(_COMPRESSED)
            ):
                continue
            try:
                info = os.lstat(self.path.parent / entry)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((entry, info))
        found.sort(key=_age)
        return found

    def _open_sibling(self, name: str, identity: Identity) -> int | None:
        try:
            fd = open_regular(self.path.parent / name, self.root)
        except (UnsafeFile, OSError):
            return None
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != identity:  # replaced between listing and opening
            os.close(fd)
            return None
        return fd

    def _look_beside(self, out: Lines, now: float, *, history: bool = False) -> list[_Generation]:
        """Match the rotated files beside ours to the generations we know.

        A generation without a descriptor (rotated while closed, or the copytruncate rest
        of the current file) is found by inode, else by content. A generation of ours
        retired earlier that has grown since is drained again. Any other file not seen
        before is a generation that came and went between two reads: it is read from its
        start, unless ``history`` (the first look, when such files are older than us).

        Returns the generations without a descriptor that were not found.
        """
        siblings = self._siblings()
        homeless = [g for g in self.draining if g.fd is None]
        current = self.current.identity if self.current is not None else None
        missed: list[tuple[str, Identity, int]] = []

        def ours(entry: tuple[str, os.stat_result]) -> bool:
            known = self._seen.get((entry[1].st_dev, entry[1].st_ino))
            return known is not None and not known.history

        # Files found by inode first: a copy must not be mistaken for a file still there.
        for name, info in sorted(siblings, key=lambda entry: not ours(entry)):
            identity = (info.st_dev, info.st_ino)
            stamp = (info.st_size, info.st_mtime_ns)
            if identity == current or (
                not homeless and identity in self._seen and self._stamps.get(identity) == stamp
            ):
                continue  # unchanged since the last look, and no generation to find
            self._stamps[identity] = stamp
            fd = self._open_sibling(name, identity)
            if fd is None:
                if identity not in self._seen and not history:
                    out.notes.append(
                        f"possible gap: {name}, a rotated {self.path.name}, could not "
                        f"be read ({utc_iso()})"
                    )
                    self._seen[identity] = _Generation(identity, None, name, history=True)
                continue
            if not self._place(name, info, fd, homeless, missed, out, now, history):
                os.close(fd)
        if len(missed) > MAX_GENERATIONS:
            for _, _, fd in missed[:-MAX_GENERATIONS]:
                os.close(fd)
            out.notes.append(
                f"possible gap: {len(missed) - MAX_GENERATIONS} older rotated generations of "
                f"{self.path.name} were not read ({utc_iso()})"
            )
            missed = missed[-MAX_GENERATIONS:]
        for name, identity, fd in missed:
            gen = _Generation(identity, fd, name, grew_at=now, until=now + DRAIN_GRACE)
            self._seen[identity] = gen
            self.draining.append(gen)
            out.notes.append(
                f"{name}: a generation of {self.path.name} rotated away before it was "
                "followed; reading it from the start"
            )
        self._forget(siblings, now)
        return homeless

    def _forget(self, siblings: list[tuple[str, os.stat_result]], now: float) -> None:
        """Drop what is known of rotated files gone from the directory for a while."""
        here = {(info.st_dev, info.st_ino) for _, info in siblings}
        here.update(g.identity for g in self.draining)
        if self.current is not None:
            here.add(self.current.identity)
        for identity in here:
            self._gone.pop(identity, None)
        for identity in self._seen.keys() - here:
            if now - self._gone.setdefault(identity, now) > FORGET_AFTER:
                del self._seen[identity], self._gone[identity]
                self._stamps.pop(identity, None)

    def _place(
        self,
        name: str,
        info: os.stat_result,
        fd: int,
        homeless: list[_Generation],
        missed: list[tuple[str, Identity, int]],
        out: Lines,
        now: float,
        history: bool,
    ) -> bool:
        """Decide what the rotated file ``name`` (open as ``fd``) is; False: not needed."""
        identity = (info.st_dev, info.st_ino)
        size = info.st_size
        known = self._seen.get(identity)
        if known is not None and not known.history:
            if known.fd is not None:
                return False  # being read already
            if known.matches(fd, size):
                if known in homeless:
                    homeless.remove(known)
                elif size > known.offset:  # retired, then written to after we let it go
                    known.until = now + DRAIN_GRACE
                    self.draining.append(known)
                else:
                    return False
                known.fd, known.label = fd, name
                return True
            # Our file, rewritten since we read it: what it holds now is another generation
            # (and the end of ours may survive in a copy: it stays homeless for now).
            del self._seen[identity]
            known = None
        elif known is not None and known.head and os.pread(fd, len(known.head), 0) != known.head:
            known = None  # the inode now belongs to another file
        owner = next((g for g in homeless if g.offset and g.matches(fd, size)), None)
        if owner is not None:  # a copy holding what we read of a file, and its rest
            homeless.remove(owner)
            owner.fd, owner.identity, owner.label = fd, identity, name
            self._seen[identity] = owner
            return True
        if known is not None:
            return False  # older than the first look
        if not size:
            return False  # nothing to read yet (a copy just created): look again later
        if (
            history
            or any(g.holds_prefix(fd, size) for g in homeless)
            or self._copy_of_current(fd, size)
        ):
            # Older than the first look; or a copy of what was read, ending before where
            # reading stopped; or a copy of the file being read (copytruncate under way),
            # which the truncation will match by content. Nothing to read from it now.
            head = os.pread(fd, FINGERPRINT, 0)
            self._seen[identity] = _Generation(
                identity, None, name, offset=size, head=head, history=True
            )
            return False
        missed.append((name, identity, fd))
        return True

    def _copy_of_current(self, fd: int, size: int) -> bool:
        """Whether the file ``fd`` is a copy of the start of the file being read.

        Either of what was read of it, or of what it holds now (a copy being written).
        """
        current = self.current
        if current is None or current.fd is None or not size:
            return False
        if current.holds_prefix(fd, size):
            return True
        if size > os.fstat(current.fd).st_size:
            return False
        head = min(FINGERPRINT, size)
        if os.pread(fd, head, 0) != os.pread(current.fd, head, 0):
            return False
        start = max(0, size - WINDOW)
        return os.pread(fd, size - start, start) == os.pread(current.fd, size - start, start)

    def _settle(self, homeless: list[_Generation], out: Lines, now: float) -> None:
        """Give up the generations not found beside the file within their grace period.

        A listing taken while files are renamed can miss one, so one miss is not enough.
        """
        for gen in homeless:
            if now >= gen.until:
                self._lost(gen, out)

    def _lost(self, gen: _Generation, out: Lines) -> None:
        """Give up a generation rotated away while no descriptor held it."""
        self.draining.remove(gen)
        out.notes.append(
            f"possible gap: {gen.label}, rotated away while closed, was then truncated, "
            f"rewritten or removed; lines written to it past byte {gen.offset:,} were not "
            f"read ({utc_iso()})"
        )
        if gen.pending():
            out.notes.append(self._incomplete(gen))

    def _retire(self, gen: _Generation, out: Lines) -> None:
        """Stop draining a rotated generation that stayed quiet for the grace period."""
        if gen.pending():
            out.notes.append(self._incomplete(gen))
            gen.partial, gen.skipping = b"", 0
        gen.close()
        self.draining.remove(gen)

    # Consuming bytes -------------------------------------------------------------------
    def _set_error(self, message: str, out: Lines) -> None:
        if message != self.error:
            out.notes.append(message)
        self.error = message

    def _consume(
        self, gen: _Generation, out: Lines, max_bytes: int, now: float, scratch: bool = False
    ) -> bool:
        """Read up to ``max_bytes`` of ``gen`` (into the kept buffer with ``scratch``);
        returns whether anything was read."""
        assert gen.fd is not None
        # With ``scratch``, the unfinished line read before leads the buffer read into.
        lead = gen.partial if scratch else b""
        try:
            # Sized to what the file holds: a read sized by the limit allocates all of it and
            # then shrinks it, which costs page faults on every big read (3 ms per 4 MiB).
            size = os.fstat(gen.fd).st_size
            want = min(max_bytes, size - gen.offset)
            raw: bytes | bytearray = b""
            if want > 0:
                if scratch:
                    raw = _read_kept(gen.fd, want, gen.offset, lead)
                else:
                    raw = os.pread(gen.fd, want, gen.offset)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EINTR):
                self._set_error(f"{gen.label}: {exc.strerror or exc}", out)
            return False
        got = len(raw) - len(lead)  # the bytes read, after the lead
        if got <= 0:
            return False
        if got == max_bytes:
            out.more = True
        start = gen.offset
        gen.offset += got
        if len(gen.head) < FINGERPRINT:
            gen.head += raw[len(lead) : len(lead) + FINGERPRINT - len(gen.head)]
        gen.window = (gen.window + raw[max(len(lead), len(raw) - WINDOW) :])[-WINDOW:]
        gen.marks.append((gen.offset, gen.window))
        del gen.marks[:-MARKS]
        gen.grew_at, gen.noted = now, False
        data = raw[len(_BOM) :] if start == 0 and raw.startswith(_BOM) else raw
        end = data.rfind(b"\n")
        if gen.skipping:  # no partial line, and so no lead
            if end < 0:
                gen.skipping += len(data)
                return True
            first_nl = data.find(b"\n")
            self._finish_skip(gen, first_nl, out)
            data = data[first_nl + 1 :]
            end = data.rfind(b"\n")
        if end < 0:
            gen.partial = bytes(data) if lead else gen.partial + data
            self._check_partial(gen)
            return True
        chunk = data
        if gen.partial and not lead:
            chunk = gen.partial + data
            end += len(gen.partial)
        if end == len(chunk) - 1:
            gen.partial = b""
        else:
            gen.partial = bytes(chunk[end + 1 :])
            if isinstance(chunk, bytearray):
                del chunk[end + 1 :]  # in place: no copy of the lines
            else:
                chunk = chunk[: end + 1]
        # memchr for any NUL or CR first; only then the rarer question of where they are.
        nul = b"\x00" in chunk and (b"\n\x00" in chunk or chunk[:1] == b"\x00")
        cr = _lone_return(chunk)
        if not nul and not cr and not self._has_long_line(chunk):
            # No line needs changing: keep the buffer whole, split only if asked. A scratch
            # read's lines are counted when their number is first needed (or told by its
            # reader, which parses them all); a plain read's at once, as its readers ask.
            tally = _Tally(chunk)
            if not scratch:
                tally.lines()
            elif isinstance(chunk, bytearray):
                _KEPT.tally = tally  # counted before the kept buffer is read into again
            gen.count_later(tally)
            out.add_blob(chunk, tally)
        else:
            lines = bytes(chunk).split(b"\n")
            lines.pop()
            self._emit(gen, lines, out, nul, cr)
        self._check_partial(gen)
        return True

    def _has_long_line(self, chunk: bytes | bytearray) -> bool:
        """Whether a line in ``chunk`` exceeds ``max_line``, in about len/max_line steps."""
        limit = self.max_line
        pos, end = 0, len(chunk)
        while end - pos > limit:
            newline = chunk.rfind(b"\n", pos, pos + limit + 1)
            if newline < 0:
                return True
            pos = newline + 1
        return False

    def _emit(self, gen: _Generation, lines: list[bytes], out: Lines, nul: bool, cr: bool) -> None:
        if lines and max(map(len, lines)) > self.max_line:
            for i, line in enumerate(lines):
                if len(line) > self.max_line:
                    reason = f"line of {len(line) / 1e6:.1f} MB skipped (limit {self.max_line / 1e6:.1f} MB)"
                    out.skipped.append((gen.lineno + i + 1, reason))
                    lines[i] = b""
        if nul:
            for i, line in enumerate(lines):
                if line[:1] == b"\x00":
                    stripped = line.lstrip(b"\x00")
                    out.notes.append(
                        f"{gen.label} line {gen.lineno + i + 1}: {len(line) - len(stripped)} NUL bytes skipped"
                    )
                    lines[i] = stripped
        if cr:
            for i, line in enumerate(lines):
                if b"\r" in line:
                    lines[i] = last_segment(line)
        gen.lineno += len(lines)
        out.add(lines)

    def _check_partial(self, gen: _Generation) -> None:
        if len(gen.partial) > self.max_line:
            gen.skipping = len(gen.partial)
            gen.partial = b""

    def _finish_skip(self, gen: _Generation, tail_bytes: int, out: Lines) -> None:
        total = gen.skipping + tail_bytes
        gen.lineno += 1
        reason = f"line of {total / 1e6:.1f} MB skipped (limit {self.max_line / 1e6:.1f} MB)"
        out.skipped.append((gen.lineno, reason))
        out.add([b""])
        gen.skipping = 0

    def _incomplete(self, gen: _Generation) -> str:
        return (
            f"{gen.label}: incomplete final record, {gen.pending()} bytes, at line "
            f"{gen.lineno + 1} (the writer stopped mid-line?); not parsed"
        )

    def _note_incomplete(self, gen: _Generation, out: Lines, now: float) -> None:
        if gen.pending() and not gen.noted and now - gen.grew_at > INCOMPLETE_AFTER:
            out.notes.append(self._incomplete(gen))
            gen.noted = True
