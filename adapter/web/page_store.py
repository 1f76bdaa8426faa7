"""Where the page keeps each conversion between requests: one folder on disk per conversion,
named by an unguessable id, so any gunicorn worker can answer for it.

    <root>/<id>/meta.json   what the result page shows (counts, rejected rows, patients, ...)
    <root>/<id>/out/        the FHIR as the folder sink wrote it (read by the patients' reports)
    <root>/<id>/fhir.zip    the download: out/ and the row report
    <root>/<id>/contract.yaml  the contract the page wrote (a conversion from the mapping step)

An upload whose columns do not fit is kept the same way until its columns are mapped (`kind`
"mapping"): `<root>/<id>/sheet` holds the uploaded file as it came, meta.json its name and the
options chosen with it.

A conversion is written into `<root>/.<id>.partial` and renamed into place whole, so a reader
sees all of it or nothing. The id is `secrets.token_urlsafe(24)` (192 bits); a path is only ever
built from an id that matches `ID` exactly, never from anything else the client sends. Each
conversion lives `ttl` seconds; together they hold at most `max_bytes` of disk (the oldest go
first), counted as the disk spends it: the blocks of every file and folder (`st_blocks` * 512; a
600-byte file takes a 4 KiB block), not the bytes of the files.
The root folder is created private (0700) and refused when it is a link or someone else's.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.config import PageOptions
from adapter.model import Issue
from adapter.outcome import InternalFault

ID = re.compile(r"[A-Za-z0-9_-]{32}")
PARTIAL = re.compile(r"\.([A-Za-z0-9_-]{32})\.partial")
META = "meta.json"
OUT = "out"
ZIP = "fhir.zip"
SHEET = "sheet"
CONTRACT = "contract.yaml"
RESULT, MAPPING = "result", "mapping"


def now() -> float:
    """The clock of the store (tests move it)."""
    return time.time()


@dataclass(frozen=True)
class Stored:
    """One kept conversion."""

    id: str
    folder: Path
    meta: dict[str, Any]

    @property
    def out(self) -> Path:
        return self.folder / OUT

    @property
    def zip(self) -> Path:
        return self.folder / ZIP

    @property
    def sheet(self) -> Path:
        """The uploaded sheet, kept while its columns are mapped."""
        return self.folder / SHEET

    @property
    def contract(self) -> Path:
        return self.folder / CONTRACT

    @property
    def kind(self) -> str:
        """RESULT (a conversion) or MAPPING (an upload waiting for its columns to be mapped)."""
        return str(self.meta.get("kind", RESULT))

    @property
    def expires(self) -> float:
        return float(self.meta["expires"])


def disk_use(info: os.stat_result) -> int:
    """What one file or folder spends on disk: its blocks (POSIX counts them in 512 bytes), or its
    size where the system does not count blocks."""
    blocks = getattr(info, "st_blocks", None)
    return blocks * 512 if blocks is not None else info.st_size


def _size(folder: Path) -> int:
    """The disk use of the folder, itself and everything in it."""

    def use(path: str) -> int:
        try:
            return disk_use(os.lstat(path))
        except OSError:  # removed meanwhile
            return 0

    total = use(str(folder))
    for base, folders, files in os.walk(folder):
        total += sum(use(os.path.join(base, name)) for name in (*folders, *files))
    return total


def _unusable(root: Path, why: str) -> InternalFault:
    message = f"the page's folder {root} {why}; set FMS_FHIR_PAGE_DIR to a private folder"
    return InternalFault([Issue("fatal", "exception", message, None, "page-folder")])


class Store:
    def __init__(self, options: PageOptions) -> None:
        self.options = options

    def root(self) -> Path:
        """The root folder, created 0700; a link, a file or another user's folder is refused."""
        root = self.options.folder
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(root)
        except OSError as error:
            raise _unusable(root, f"cannot be created ({error.strerror})") from None
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise _unusable(root, "is not a folder")
        if info.st_uid != os.getuid():
            raise _unusable(root, "belongs to another user")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(root, 0o700)
        return root

    # --- writing ---------------------------------------------------------------------------------

    def begin(self) -> tuple[str, Path]:
        """A new id and its staging folder."""
        root = self.root()
        identifier = secrets.token_urlsafe(24)
        staging = root / f".{identifier}.partial"
        staging.mkdir(mode=0o700)
        return identifier, staging

    def size_of(self, staging: Path) -> int:
        return _size(staging)

    def commit(self, identifier: str, staging: Path, meta: dict[str, Any]) -> Stored:
        """Writes meta.json (with the times and the size), moves the folder into place, then
        removes the oldest conversions while all of them hold more than `max_bytes`."""
        created = now()
        meta = {**meta, "created": created, "expires": created + self.options.ttl, "bytes": 0}
        (staging / META).write_bytes(json.dumps(meta).encode())
        meta["bytes"] = _size(staging)  # meta.json too; the count's few digits change no block
        (staging / META).write_bytes(json.dumps(meta).encode())
        target = self.root() / identifier
        staging.rename(target)
        self._evict(keep=identifier)
        return Stored(identifier, target, meta)

    def abort(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, identifier: str) -> Stored | None:
        """The conversion of this id, or None: malformed, unknown, expired, or removed."""
        if not ID.fullmatch(identifier):
            return None
        folder = self.root() / identifier
        try:
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                return None
            meta = json.loads((folder / META).read_bytes())
        except (OSError, ValueError):
            return None
        stored = Stored(identifier, folder, meta)
        if stored.expires <= now():
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return stored

    # --- cleaning --------------------------------------------------------------------------------

    def _kept(self) -> list[tuple[float, str, int]]:
        """(created, id, bytes) of every kept conversion."""
        found = []
        root = self.root()
        for entry in os.scandir(root):
            if not ID.fullmatch(entry.name):
                continue
            try:
                meta = json.loads((root / entry.name / META).read_bytes())
                found.append((float(meta["created"]), entry.name, int(meta["bytes"])))
            except (OSError, ValueError, KeyError, TypeError):
                found.append((entry.stat(follow_symlinks=False).st_mtime, entry.name, 0))
        return sorted(found)

    def sweep(self) -> None:
        """Removes expired conversions and the staging folders of conversions that died; nothing
        else in the folder is touched."""
        root = self.root()
        moment = now()
        stale = moment - max(self.options.ttl, 3600)
        for created, identifier, _ in self._kept():
            if created + self.options.ttl <= moment:
                shutil.rmtree(root / identifier, ignore_errors=True)
        for entry in os.scandir(root):
            if PARTIAL.fullmatch(entry.name):
                try:
                    if entry.stat(follow_symlinks=False).st_mtime < stale:
                        shutil.rmtree(entry.path, ignore_errors=True)
                except OSError:
                    pass

    def _evict(self, keep: str) -> None:
        kept = self._kept()
        total = sum(size for _, _, size in kept)
        root = self.root()
        for _, identifier, size in kept:
            if total <= self.options.max_bytes:
                break
            if identifier == keep:
                continue
            shutil.rmtree(root / identifier, ignore_errors=True)
            total -= size
