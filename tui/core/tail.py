"""Follow one growing file without losing, duplicating or tearing a line.

A :class:`FileTail` remembers the byte offset and the file's identity: device, inode and a
fingerprint of its first bytes. Each :meth:`FileTail.read` returns only complete lines; a
partial last line waits for its newline. Truncation (size below the offset, or the first
bytes changed) re-reads from the start; rename-rotation drains the old file before the new
one is opened; deletion keeps everything read so far and reattaches when the name returns.
Lines longer than ``max_line`` are skipped with a note while memory stays bounded. Files are
opened read-only with ``O_NOFOLLOW|O_NONBLOCK``, must be regular, and are never mapped.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

FINGERPRINT = 64
"""Bytes at the start of a file that identify it across polls."""

MAX_LINE = 4 * 1024 * 1024
"""Longest line kept, in bytes; longer lines are skipped and noted."""

READ_CHUNK = 4 * 1024 * 1024
"""Default most bytes consumed from one file in one call."""

INCOMPLETE_AFTER = 30.0
"""Seconds a partial last line may wait before it is reported as incomplete."""

_OPEN_FLAGS = (
    os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
)
_BOM = b"\xef\xbb\xbf"


class UnsafeFile(Exception):
    """The path is not a regular file inside the root (FIFO, device, symlink out of ROOT)."""


@dataclass(slots=True)
class Lines:
    """What one read produced: complete lines numbered from ``first_lineno`` (1-based).

    A skipped overlong line keeps its number with an empty placeholder, so numbering stays
    contiguous. ``notes`` are human-readable events (truncation, rotation, skips).
    """

    pieces: list[bytes | list[bytes]] = field(default_factory=list)
    first_lineno: int = 1
    notes: list[str] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    more: bool = False
    restarted: bool = False
    count: int = 0

    def __bool__(self) -> bool:
        return bool(self.count or self.notes or self.skipped)

    def add(self, lines: list[bytes]) -> None:
        """Append already split lines."""
        self.pieces.append(lines)
        self.count += len(lines)

    def add_blob(self, blob: bytes, count: int) -> None:
        """Append ``count`` complete lines held in one newline-terminated buffer."""
        self.pieces.append(blob)
        self.count += count

    @property
    def lines(self) -> list[bytes]:
        """Every line, without its newline (split on first use)."""
        if len(self.pieces) == 1 and isinstance(self.pieces[0], list):
            return self.pieces[0]
        out: list[bytes] = []
        for piece in self.pieces:
            if isinstance(piece, bytes):
                split = piece.split(b"\n")
                split.pop()
                out.extend(split)
            else:
                out.extend(piece)
        self.pieces = [out]
        return out

    @property
    def blob(self) -> bytes | None:
        """All lines as one newline-separated buffer, when they were read as one."""
        if len(self.pieces) == 1 and isinstance(self.pieces[0], bytes):
            return self.pieces[0]
        return None


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


class FileTail:
    """Incremental reader of one append-only file (see module docstring)."""

    def __init__(
        self,
        path: Path,
        root: Path | None = None,
        *,
        max_line: int = MAX_LINE,
        clock: object = time.monotonic,
    ) -> None:
        self.path = path
        self.root = root
        self.max_line = max_line
        self._clock = clock
        self.fd: int | None = None
        self.identity: tuple[int, int] | None = None
        self.fingerprint = b""
        self.offset = 0
        self.lineno = 0
        self.partial = b""
        self.skipping = 0
        self.missing = False
        self.error: str | None = None
        self._last_growth = 0.0
        self._incomplete_noted = False

    def close(self) -> None:
        """Release the file descriptor; the next read reopens and re-verifies identity."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _open(self, out: Lines) -> bool:
        try:
            fd = open_regular(self.path, self.root)
        except FileNotFoundError:
            if not self.missing and self.identity is not None:
                out.notes.append(f"{self.path.name} was deleted; history kept, waiting for it")
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
        if self.identity is not None and identity != self.identity:
            out.notes.append(
                f"{self.path.name} was replaced (rotated or recreated); reading the new file"
            )
            self._restart(out)
        elif self.identity is not None and self.missing:
            out.notes.append(f"{self.path.name} reappeared")
        self.fd, self.identity, self.missing, self.error = fd, identity, False, None
        if not self.fingerprint:
            self.fingerprint = os.pread(fd, FINGERPRINT, 0)
        return True

    def _set_error(self, message: str, out: Lines) -> None:
        if message != self.error:
            out.notes.append(message)
        self.error = message

    def _restart(self, out: Lines) -> None:
        self.offset = 0
        self.lineno = 0
        self.partial = b""
        self.skipping = 0
        self.fingerprint = b""
        out.restarted = True

    def _replaced(self) -> bool:
        """True when the name now points at another file than the one held."""
        try:
            info = os.stat(self.path)
        except OSError:
            return True
        return (info.st_dev, info.st_ino) != self.identity

    def read(self, max_bytes: int = READ_CHUNK) -> Lines:
        """Return the complete lines added since the last call (at most ``max_bytes`` read)."""
        out = Lines(first_lineno=self.lineno + 1)
        if self.fd is not None and self._replaced():
            # Drain the old generation first: a writer may have appended before rotating.
            self._check_truncated(out)
            while self._consume(out, max_bytes, final=True):
                pass
            self.close()
        if self.fd is None and not self._open(out):
            return out
        self._check_truncated(out)
        if not out.count and not out.restarted:
            out.first_lineno = self.lineno + 1
        self._consume(out, max_bytes, final=False)
        return out

    def _check_truncated(self, out: Lines) -> None:
        """Restart from byte 0 when the file shrank or its first bytes changed."""
        assert self.fd is not None
        size = os.fstat(self.fd).st_size
        if size < self.offset or (
            self.fingerprint
            and size >= len(self.fingerprint)
            and os.pread(self.fd, len(self.fingerprint), 0) != self.fingerprint
        ):
            out.notes.append(
                f"{self.path.name} was truncated at byte {self.offset:,}; re-reading from the start"
            )
            identity = self.identity
            self._restart(out)
            self.identity = identity
            self.fingerprint = os.pread(self.fd, FINGERPRINT, 0)
        elif len(self.fingerprint) < FINGERPRINT and size > len(self.fingerprint):
            self.fingerprint = os.pread(self.fd, FINGERPRINT, 0)

    def _consume(self, out: Lines, max_bytes: int, *, final: bool) -> bool:
        """Read up to ``max_bytes``; returns whether anything was read.

        ``final``: the file will not grow any more (rotated away), so a partial last line
        is complete at end of file.
        """
        assert self.fd is not None
        try:
            data = os.pread(self.fd, max_bytes, self.offset)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EINTR):
                self._set_error(f"{self.path.name}: {exc.strerror or exc}", out)
            return False
        if not data:
            self._note_incomplete(out)
            if final and self.partial:
                self._emit([self.partial], out)
                self.partial = b""
            return False
        if len(data) == max_bytes:
            out.more = True
        start_offset = self.offset
        self.offset += len(data)
        self._last_growth = self._clock()  # type: ignore[operator]
        self._incomplete_noted = False
        if start_offset == 0 and data.startswith(_BOM):
            data = data[len(_BOM) :]
        if out.restarted and not out.count:
            out.first_lineno = 1
        end = data.rfind(b"\n")
        if self.skipping:
            if end < 0:
                self.skipping += len(data)
                return True
            first_nl = data.find(b"\n")
            self._finish_skip(first_nl, out)
            data = data[first_nl + 1 :]
            end = data.rfind(b"\n")
        if end < 0:
            self.partial += data
            self._check_partial(out)
            return True
        if end == len(data) - 1:
            chunk = self.partial + data if self.partial else data
            self.partial = b""
        else:
            chunk = self.partial + data[: end + 1] if self.partial else data[: end + 1]
            self.partial = data[end + 1 :]
        # memchr for any NUL first; only then the rarer question of where they are.
        nul = b"\x00" in chunk and (b"\n\x00" in chunk or chunk[:1] == b"\x00")
        if not nul and not self._has_long_line(chunk):
            # No line can be too long: keep the buffer whole, split only if asked.
            count = chunk.count(b"\n")
            self.lineno += count
            out.add_blob(chunk, count)
        else:
            lines = chunk.split(b"\n")
            lines.pop()
            self._emit(lines, out, nul)
        self._check_partial(out)
        return True

    def _has_long_line(self, chunk: bytes) -> bool:
        """Whether a line in ``chunk`` exceeds ``max_line``, in about len/max_line steps."""
        limit = self.max_line
        pos, end = 0, len(chunk)
        while end - pos > limit:
            newline = chunk.rfind(b"\n", pos, pos + limit + 1)
            if newline < 0:
                return True
            pos = newline + 1
        return False

    def _emit(self, lines: list[bytes], out: Lines, nul: bool = True) -> None:
        if lines and max(map(len, lines)) > self.max_line:
            for i, line in enumerate(lines):
                if len(line) > self.max_line:
                    reason = f"line of {len(line) / 1e6:.1f} MB skipped (limit {self.max_line / 1e6:.1f} MB)"
                    out.skipped.append((self.lineno + i + 1, reason))
                    lines[i] = b""
        if nul:
            for i, line in enumerate(lines):
                if line[:1] == b"\x00":
                    stripped = line.lstrip(b"\x00")
                    out.notes.append(
                        f"{self.path.name} line {self.lineno + i + 1}: {len(line) - len(stripped)} NUL bytes skipped"
                    )
                    lines[i] = stripped
        self.lineno += len(lines)
        out.add(lines)

    def _check_partial(self, out: Lines) -> None:
        if len(self.partial) > self.max_line:
            self.skipping = len(self.partial)
            self.partial = b""

    def _finish_skip(self, tail_bytes: int, out: Lines) -> None:
        total = self.skipping + tail_bytes
        self.lineno += 1
        reason = f"line of {total / 1e6:.1f} MB skipped (limit {self.max_line / 1e6:.1f} MB)"
        out.skipped.append((self.lineno, reason))
        out.add([b""])
        self.skipping = 0

    def _note_incomplete(self, out: Lines) -> None:
        if (
            self.partial
            and not self._incomplete_noted
            and self._clock() - self._last_growth > INCOMPLETE_AFTER  # type: ignore[operator]
        ):
            out.notes.append(
                f"{self.path.name}: incomplete final record at line {self.lineno + 1} (writer stopped mid-line?)"
            )
            self._incomplete_noted = True
