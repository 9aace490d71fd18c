"""A file cache of checksummed entries with atomic writes.

An entry is one file: a magic line, the sha256 of the body, then the body (the entry's JSON
metadata and array index, then the arrays' raw bytes, zlib-compressed). Writes go to a temporary file in the same folder
and are renamed into place, so a reader sees either the whole entry or none. Every load verifies
the checksum; a corrupt or truncated entry is reported in one line, deleted and treated as
missing, so the caller recomputes it — it is never used.

Each entry's header names the entry itself (its key ``<scope>/<video>/<kind>/<frame…>``, in the
metadata under ``_entry``): an entry copied over another (another frame's, video's or kind's)
fails that check and is treated as corrupt like a bad checksum.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lcrp_core.files import atomic_open

try:
    import fcntl
except ImportError:  # Windows: no claims (one worker per cache there)
    fcntl = None

log = logging.getLogger("lcrp.cache")

MAGIC = b"LCRPCACHE2\n"
SUFFIX = ".lcrp"


class CorruptEntry(Exception):
    """An entry whose checksum or structure does not verify."""


@dataclass(frozen=True)
class Entry:
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


def encode_entry(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bytes:
    """Header (JSON: the metadata and each array's name, dtype, shape and byte range), then the
    arrays' raw bytes, zlib-compressed; prefixed by the magic line and the body's sha256."""
    index, chunks, offset = [], [], 0
    for name, value in arrays.items():
        a = np.asarray(value)  # tobytes() writes C order whatever the layout
        if a.dtype.hasobject:
            raise TypeError(f"cache entries hold plain arrays, not {a.dtype} ({name})")
        index.append({"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "offset": offset,
                      "nbytes": a.nbytes})
        chunks.append(a.tobytes())
        offset += a.nbytes
    header = json.dumps({"meta": meta, "arrays": index}, sort_keys=True).encode()
    body = zlib.compress(len(header).to_bytes(8, "little") + header + b"".join(chunks), 3)
    return MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def decode_entry(blob: bytes) -> Entry:
    head = len(MAGIC) + 65
    if not blob.startswith(MAGIC) or len(blob) < head or blob[head - 1:head] != b"\n":
        raise CorruptEntry("bad header")
    digest, body = blob[len(MAGIC):head - 1].decode("ascii", "replace"), blob[head:]
    if hashlib.sha256(body).hexdigest() != digest:
        raise CorruptEntry("checksum mismatch")
    try:  # a verified body that still does not parse is corrupt too
        raw = zlib.decompress(body)
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        data = memoryview(raw)[8 + n:]
        arrays = {a["name"]: np.frombuffer(data[a["offset"]:a["offset"] + a["nbytes"]],
                                           dtype=np.dtype(a["dtype"])).reshape(a["shape"]).copy()
                  for a in header["arrays"]}
        return Entry(arrays, header["meta"])
    except (zlib.error, ValueError, KeyError, TypeError) as exc:
        raise CorruptEntry(f"unreadable body ({exc})") from exc


#: Metadata key holding the entry's own key (see the module doc).
ENTRY_KEY = "_entry"
#: A temporary file untouched for this long was left by a killed writer (seconds).
STALE_TMP_S = 600.0


def _check_entry(entry: Entry, key: str) -> Entry:
    """``entry`` without its ``_entry`` name, or CorruptEntry when it names another entry."""
    meta = dict(entry.meta)
    named = meta.pop(ENTRY_KEY, None)
    if named != key:
        raise CorruptEntry(f"its header names entry {named!r}, not this one" if named else
                           "its header does not name its entry")
    return Entry(entry.arrays, meta)


class CacheStore:
    """Checksummed entries under ``root``, addressed by relative keys like ``a/b/c``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}{SUFFIX}"

    @contextlib.contextmanager
    def claim(self, keys: str | Sequence[str]) -> Iterator[None]:
        """Hold an exclusive lock per key (``fcntl.flock`` on ``_locks/<hash>.lock``, taken in
        sorted order) while the block runs: two workers that miss the same entries compute them
        once — the second waits, then finds them written. A no-op where flock is unavailable;
        across machines it needs a file system with working flock (local disks, most NFSv4)."""
        keys = sorted({keys} if isinstance(keys, str) else set(keys))
        if fcntl is None or not keys:
            yield
            return
        locks = self.root / "_locks"
        locks.mkdir(parents=True, exist_ok=True)
        handles = []
        try:
            for key in keys:
                fh = open(locks / f"{hashlib.sha1(key.encode()).hexdigest()}.lock", "a+b")
                handles.append(fh)
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            yield
        finally:
            for fh in reversed(handles):
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
                fh.close()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> Entry | None:
        """The entry at ``key``, or None if absent or corrupt (corrupt entries are deleted)."""
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return _check_entry(decode_entry(blob), key)
        except CorruptEntry as exc:
            log.warning("cache: corrupt entry %s (%s): discarded, recomputing", path, exc)
            path.unlink(missing_ok=True)
            return None

    def put(self, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> None:
        """Write an entry atomically (temporary file in the same folder, then rename)."""
        with atomic_open(self.path(key)) as fh:
            fh.write(encode_entry(arrays, {**(meta or {}), ENTRY_KEY: key}))

    def has_header(self, key: str) -> bool:
        """Cheap check of an entry (no decompression): the file exists, is longer than the
        magic line and checksum, and starts with the magic line."""
        path = self.path(key)
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(MAGIC))
            return head == MAGIC and path.stat().st_size > len(MAGIC) + 65
        except OSError:
            return False

    def remove_stale_tmp(self, prefix: str = "") -> int:
        """Delete the temporary files under ``prefix`` left by killed writers (untouched for
        STALE_TMP_S seconds); how many were deleted."""
        import time

        base, removed = self.root / prefix, 0
        if not base.is_dir():
            return 0
        for path in base.rglob(".*.tmp"):
            try:
                if time.time() - path.stat().st_mtime > STALE_TMP_S:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def entries(self, prefix: str = "") -> Iterator[Path]:
        """Every entry file under ``root/prefix``."""
        base = self.root / prefix
        if base.is_dir():
            yield from sorted(base.rglob(f"*{SUFFIX}"))  # temporary files end in .tmp

    def verify(self, prefix: str = "") -> Iterator[tuple[Path, str | None]]:
        """(path, problem or None) for every entry under ``prefix``; nothing is deleted."""
        for path in self.entries(prefix):
            key = path.relative_to(self.root).as_posix().removesuffix(SUFFIX)
            try:
                _check_entry(decode_entry(path.read_bytes()), key)
            except CorruptEntry as exc:
                yield path, str(exc)
            else:
                yield path, None
