"""What the kernel says about the files tracktui reads: the type of filesystem a path is on
(another machine may write to a network one, and inotify does not see its writes), how
many descriptors this process may hold, and which directories an inotify instance really
watches (``/proc/self/fdinfo``, whatever the watcher library believes)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "lustre",
        "gpfs",
        "beegfs",
        "ceph",
        "glusterfs",
        "afs",
        "fuse.sshfs",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "virtiofs",
    }
)
"""Filesystems whose files other machines may write (FUSE mounts count too: see
:func:`is_remote`)."""


def open_file_budget() -> int:
    """How many runs may keep their files open, after raising the soft descriptor limit.

    A run holds up to two descriptors (metrics and log). The soft limit is often 1,024
    while the hard one is far higher, so it is raised first; what remains beyond a
    reserve for everything else is shared out, and the least recently read runs close
    their files when it is exceeded (they reopen, and re-verify identity, when read).
    """
    try:
        import resource
    except ImportError:  # not POSIX
        return 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    limit = 65536 if soft == resource.RLIM_INFINITY else soft
    return max(8, (limit - 256) // 3)


def is_network_filesystem(path: Path) -> bool:
    """True when ``path`` is on a filesystem other machines may write (NFS, Lustre, FUSE...)."""
    return is_remote(filesystem_type(path))


def is_remote(kind: str | None) -> bool:
    """Whether a filesystem of this type (:func:`filesystem_type`) may be written by other
    machines."""
    # Every FUSE mount counts: ``fuse.sshfs`` and friends, and plain ``fuse`` (a mount with
    # no subtype says nothing of where its files live; its writers may be anywhere).
    kind = kind or ""
    return kind in NETWORK_FS or kind.startswith("fuse")


_OCTAL = re.compile(rb"\\([0-7]{3})")


def _mount_point(field: bytes) -> str:
    """A mount point as mountinfo spells it (space, tab, newline, backslash as ``\\ooo``)."""
    return os.fsdecode(_OCTAL.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), field))


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding ``path`` (from /proc/self/mountinfo), if known.

    The longest mount point above ``path`` wins; of several at the same point, the last
    mounted (it hides the others).
    """
    try:
        text = Path("/proc/self/mountinfo").read_bytes()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in text.splitlines():
        left, _, right = line.partition(b" - ")
        fields = left.split()
        if len(fields) < 5 or not right.split():
            continue
        mount = _mount_point(fields[4])
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, os.fsdecode(right.split()[0])
    return kind


def directory_identity(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of the directory at ``path``; ``None`` when there is none."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


def inotify_fds() -> set[int]:
    """This process's open inotify descriptors."""
    found: set[int] = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
                found.add(int(name))
    return found


_WATCH_LINE = re.compile(r"^inotify wd:\S+ ino:([0-9a-f]+) sdev:([0-9a-f]+)", re.M)


def watched_inodes(fds: Iterable[int]) -> set[tuple[int, int]] | None:
    """``(kernel device, inode)`` of everything the kernel watches for these inotify
    descriptors (``/proc/self/fdinfo``: the truth, whatever the watcher library believes);
    ``None`` when that cannot be read."""
    out: set[tuple[int, int]] = set()
    for fd in fds:
        try:
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            return None
        out.update((int(dev, 16), int(ino, 16)) for ino, dev in _WATCH_LINE.findall(text))
    return out


def kernel_device(device: int) -> int:
    """``st_dev`` as the kernel writes it in fdinfo (``MKDEV``: major << 20 | minor)."""
    return (os.major(device) << 20) | os.minor(device)


_IN_ATTRIB = 0x00000004
_IN_ONLYDIR_DONT_FOLLOW = 0x01000000 | 0x02000000


def probe_watch(path: Path) -> int:
    """Why the kernel would refuse to watch ``path`` now: an errno (ENOSPC: the watch limit;
    EMFILE: the instance limit; EACCES...), or 0 when it would not."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        return ctypes.get_errno() or errno.EMFILE
    try:
        mask = _IN_ATTRIB | _IN_ONLYDIR_DONT_FOLLOW
        if libc.inotify_add_watch(fd, os.fsencode(path), mask) < 0:
            return ctypes.get_errno() or errno.EINVAL
        return 0
    finally:
        os.close(fd)
