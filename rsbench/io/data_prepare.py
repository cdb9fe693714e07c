"""``rsbench data prepare``: from the archives a dataset's providers distribute to the layout its
checker reads, and ``rsbench data fixture --archives``: a fixture packed as those archives.

Each dataset names its recipe in ``DatasetInfo.archives`` (``"pkg.mod:attr"`` of a :class:`Recipe`);
the engine here knows no dataset. A recipe lists one or more *variants* (the same data as users
really receive it: e.g. the ISPRS zips one by one, or the outer ``Potsdam.zip`` holding them); each
variant lists :class:`Archive` records: the file as published (name relative to the downloads
folder, aliases, byte-split parts, or a member of another archive), where it comes from, its
published checksum, and where its content goes in the prepared root.

Why the stages: a user's downloads are large and precious and a prepare may be killed at any
moment. So the downloads are only ever read; every archive is first unpacked into a staging folder
inside the output root (same filesystem, so moving is a rename); only when *every* archive has
unpacked cleanly are the files renamed into place, archive by archive, each followed by a
completion marker. A bad input (truncated archive, missing part, wrong checksum) therefore leaves
nothing of the layout half-written, and a killed prepare reruns to the same tree; a rerun with
unchanged downloads finds every marker and does nothing but the final check.

Zstandard tarballs (``.tar.zst``: BigEarthNet v2 / reBEN ships its 60 GB image archives so) are
read with the ``zstandard`` package, decompressed as they stream through ``tarfile`` (never whole
in memory or on disk); a frame cut short or failing its checksum is an error naming the archive.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from rsbench.errors import DataLayoutError, RsbenchError
from rsbench.io import atomic_write
from rsbench.io.fixtures import FIXTURE_MARKER
from rsbench.plugin_api.catalog import DatasetInfo, load_object

#: Where the engine keeps its state inside the prepared root (staging, completion markers, lock).
STATE_DIR = ".rsbench-prepare"
#: Written last, at the prepared root: which recipe variant and archives made this tree.
PREPARED_MARKER = ".rsbench-prepared.json"
LINK_MODES = ("copy", "hardlink", "symlink")
ZIP_SUFFIXES = (".zip",)
#: Zstandard-compressed tarballs (read and written with the ``zstandard`` package).
ZSTD_SUFFIXES = (".tar.zst", ".tar.zstd", ".tzst")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", *ZSTD_SUFFIXES)
#: Formats seen in the wild that the standard library cannot read.
FOREIGN_SUFFIXES = (".rar", ".7z")
#: Members that operating systems add to archives (besides ``__MACOSX/``) and no dataset needs.
JUNK = (".DS_Store", "Thumbs.db", "desktop.ini")
_CHUNK = 1 << 20
#: Compressed bytes decompressed at a time from a .zst stream. One step's output is this times the
#: local ratio: a few KiB on satellite rasters, at most 32 MiB on long runs of zeros (zstd stores
#: 2 GiB of zeros in about 64 KiB). Measured: 1 KiB steps decode ~15% slower than 64 KiB ones on
#: raster-like data (0.22 s vs 0.19 s per 100 MB), small next to writing the files.
_ZSTD_IN = 1 << 10
#: Fixed member time of the fixture archives, so the same seed gives the same bytes.
_EPOCH = (1980, 1, 1, 0, 0, 0)


class PrepareError(DataLayoutError):
    """A download is missing, incomplete or not what its provider publishes; names the file."""


@dataclass(frozen=True)
class Archive:
    """One file as its provider publishes it, and where its content goes.

    ``name`` is the path relative to the downloads folder, with the provider's own nesting
    (``train/images/part1.zip``); with ``inside`` it is instead the member path inside that
    other archive. ``dest`` is the folder of the prepared root the content goes to; ``top`` a
    folder the published archive may hold its content under, stripped where present (some copies
    of the same archive have it, some do not). ``include`` (``fnmatch`` patterns on the path below
    ``dest``, ``*`` crossing ``/``) selects the members kept, and the fixture files packed.
    ``md5`` is the provider's published checksum, empty where none is published. ``parts``
    are byte-split volumes (``x.zip.001``, ``x.zip.002``...) read as one file, in order. A name
    without an archive suffix is a plain file published as is (a split list): it is copied (or
    linked) to ``dest`` under its own name.
    ``share`` = (i, n): in a fixture, this archive holds every n-th matching file from the i-th
    (how a provider spreads one folder over ``part1.zip``, ``part2.zip``...).
    """

    name: str
    url: str
    dest: str = ""
    top: str = ""
    include: tuple[str, ...] = ("*",)
    md5: str = ""
    aliases: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    inside: str = ""
    optional: bool = False
    share: tuple[int, int] = (0, 1)
    note: str = ""

    @property
    def key(self) -> str:
        """A file-name-safe identifier for markers and staging folders."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{self.inside}!{self.name}" if self.inside else self.name)

    @property
    def unpacked_name(self) -> str:
        """The folder a user who unpacked the archive in place would have: the name less its suffix."""
        return _strip_suffix(self.name)


@dataclass(frozen=True)
class Variant:
    """One way the data reaches users: a set of archives that together make the layout.

    ``fixture`` ("pkg.mod:fn", fn(out, seed)) writes the layout this variant produces when it is
    not the dataset's default fixture; ``fixture_dir`` is the sub-folder of that fixture output
    that corresponds to the prepared root (the fixture writers put e.g. ``LEVIR-CD/`` under out).
    """

    name: str
    archives: tuple[Archive, ...]
    description: str = ""
    fixture: str = ""
    fixture_dir: str = ""


@dataclass(frozen=True)
class Recipe:
    """How a dataset's published archives become its checked layout."""

    dataset: str
    page: str
    variants: tuple[Variant, ...]
    notes: str = ""

    def variant(self, name: str | None) -> Variant:
        if name is None:
            return self.variants[0]
        for v in self.variants:
            if v.name == name:
                return v
        raise PrepareError(f"{self.dataset}: no archive variant {name!r}; known: "
                           + ", ".join(v.name for v in self.variants))


# -- recipes -------------------------------------------------------------------------------------
def recipe_of(info: DatasetInfo) -> Recipe:
    """The dataset's archive recipe, or a clear error when it has none yet."""
    if not info.archives:
        raise PrepareError(f"dataset {info.name!r} declares no archive recipe (DatasetInfo.archives) yet: "
                           f"unpack its downloads by hand into the layout {info.layout}")
    recipe = load_object(info.archives)
    if not isinstance(recipe, Recipe):
        raise PrepareError(f"{info.archives}: expected an rsbench.io.data_prepare.Recipe, found {type(recipe).__name__}")
    return recipe


def describe(info: DatasetInfo) -> str:
    """The archives of every variant, with sources and checksums (for ``rsbench info dataset``)."""
    recipe = recipe_of(info)
    lines = [f"downloads page: {recipe.page}"]
    for v in recipe.variants:
        lines.append(f"variant {v.name}: {v.description}".rstrip(": "))
        for a in v.archives:
            where = f"member {a.name} of {a.inside}" if a.inside else a.name
            if a.parts:
                where += f" (in {len(a.parts)} parts: {', '.join(a.parts)})"
            if a.aliases:
                where += f" (also saved as {', '.join(a.aliases)})"
            check = f"md5 {a.md5}" if a.md5 else "no published checksum"
            dest = a.dest or "."
            lines.append(f"  {where} -> {dest}/{'  [optional]' if a.optional else ''}; {check}; from {a.url}"
                         + (f"; {a.note}" if a.note else ""))
    if recipe.notes:
        lines.append(recipe.notes)
    return "\n".join(lines)


# -- locating downloads ----------------------------------------------------------------------------
@dataclass
class _Source:
    """Where an archive was found: a file (maybe in parts), a member of another file, or a folder."""

    archive: Archive
    kind: str  # "file" | "member" | "folder"
    paths: list[Path] = field(default_factory=list)
    missing: str = ""

    def fingerprint(self) -> list[Any]:
        """Cheap identity of the inputs (size and mtime of each file): what the markers compare."""
        if self.kind == "folder":
            files = sorted(p for p in self.paths[0].rglob("*") if p.is_file())
            stats = [p.stat() for p in files]
            return [self.kind, str(self.paths[0]), len(files), sum(s.st_size for s in stats),
                    max((s.st_mtime_ns for s in stats), default=0)]
        return [self.kind] + [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in self.paths]


def _strip_suffix(name: str) -> str:
    lower = name.lower()
    for suffix in sorted(ZIP_SUFFIXES + TAR_SUFFIXES + FOREIGN_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _locate(archive: Archive, downloads: Path) -> _Source:
    """Find ``archive`` in ``downloads``: the file (or an alias), all its parts, the outer archive
    holding it, or the folder it was unpacked into; ``missing`` says what is not there."""
    if archive.inside:
        outer = downloads / archive.inside
        if outer.is_file():
            return _Source(archive, "member", [outer])
        return _Source(archive, "member", missing=f"{archive.inside} (holding {archive.name})")
    if archive.parts:
        present = [downloads / p for p in archive.parts if (downloads / p).is_file()]
        if len(present) == len(archive.parts):
            return _Source(archive, "file", [downloads / p for p in archive.parts])
        if present:
            absent = [p for p in archive.parts if not (downloads / p).is_file()]
            raise PrepareError(
                f"{downloads / absent[0]}: missing part of the multi-part archive {archive.name} "
                f"({len(present)} of {len(archive.parts)} parts present; missing: {', '.join(absent)}); "
                f"download every part from {archive.url} into {downloads}")
    else:
        for name in (archive.name, *archive.aliases):
            if (downloads / name).is_file():
                return _Source(archive, "file", [downloads / name])
    folder = downloads / archive.unpacked_name
    if folder.is_dir() and any(folder.iterdir()):
        return _Source(archive, "folder", [folder])
    return _Source(archive, "file", missing=archive.name)


def _choose(recipe: Recipe, downloads: Path, variant: str | None) -> tuple[Variant, list[_Source]]:
    """The requested variant, or the first whose required archives are all there; otherwise an
    error naming every missing archive of every variant, each with where it comes from."""
    candidates = [recipe.variant(variant)] if variant else list(recipe.variants)
    reports = []
    for v in candidates:
        sources = [_locate(a, downloads) for a in v.archives]
        missing = [s for s in sources if s.missing and not s.archive.optional]
        if not missing:
            return v, [s for s in sources if not s.missing]
        lines = [f"  - {s.missing}: from {s.archive.url}" + (f" ({s.archive.note})" if s.archive.note else "")
                 for s in missing]
        reports.append(f"variant {v.name!r}" + (f" ({v.description})" if v.description else "")
                       + f", missing {len(missing)} of {len(v.archives)}:\n" + "\n".join(lines))
    alt = "\nor, as another variant, " if len(reports) > 1 else "\n"
    raise PrepareError(f"{downloads}: the {recipe.dataset} downloads are incomplete (page: {recipe.page}).\n"
                       + alt.join(reports))


# -- reading archives -------------------------------------------------------------------------------
class _Concat(io.RawIOBase):
    """Byte-split volumes read as one seekable file (what ``cat x.001 x.002 > x`` would give)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.files = [open(p, "rb") for p in paths]
        self.sizes = [p.stat().st_size for p in paths]
        self.total = sum(self.sizes)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.total}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done, start = 0, 0
        for f, size in zip(self.files, self.sizes):
            if done == len(view):
                break
            if self.pos < start + size:
                f.seek(self.pos - start)
                n = f.readinto(view[done:done + min(len(view) - done, start + size - self.pos)]) or 0
                done += n
                self.pos += n
            start += size
        return done

    def close(self) -> None:
        for f in self.files:
            f.close()
        super().close()


def _open_bytes(paths: Sequence[Path]) -> BinaryIO:
    if len(paths) == 1:
        return open(paths[0], "rb")
    return io.BufferedReader(_Concat(paths), buffer_size=_CHUNK)  # type: ignore[return-value]


def _remaining(fileobj: BinaryIO) -> int:
    """Bytes after the current position (tarfile leaves it after the last member's data)."""
    here = fileobj.tell()
    end = fileobj.seek(0, os.SEEK_END)
    fileobj.seek(here)
    return end - here


def _format(name: str) -> str:
    """zip, tar, foreign (an archive the standard library cannot read) or plain (a file
    published as is, e.g. a split list: copied or linked to ``dest``)."""
    lower = name.lower()
    if lower.endswith(ZIP_SUFFIXES):
        return "zip"
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    return "foreign" if lower.endswith(FOREIGN_SUFFIXES) else "plain"


@dataclass
class _Member:
    rel: str  # path below dest, after the top folder is stripped
    size: int
    read: Callable[[], BinaryIO]


def _clean_member(archive: Archive, label: str, raw: str) -> str | None:
    """The member's path below ``dest``, or None for folders, junk and members not included;
    an error for a path that would leave the output folder."""
    name = raw.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    parts = name.split("/")
    if not name or name.endswith("/") or "__MACOSX" in parts or parts[-1] in JUNK:
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise PrepareError(f"{label}: member {raw!r} points outside the archive's folder; refusing to unpack it")
    top = archive.top.strip("/")
    if top and name.startswith(top + "/"):
        name = name[len(top) + 1:]
    if not any(fnmatch.fnmatchcase(name, pattern) for pattern in archive.include):
        return None
    return name


def _damaged(label: str, archive: Archive, exc: BaseException, what: str = "") -> PrepareError:
    return PrepareError(f"{label}: {what or 'the archive'} is damaged or cut short ({type(exc).__name__}: {exc}); "
                        f"the download is probably truncated: download it again from {archive.url}")


def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError as exc:  # an environment problem, not a damaged download
        raise RsbenchError("reading or writing .tar.zst archives (e.g. BigEarthNet v2 / reBEN) needs the "
                           "zstandard package: pip install zstandard") from exc
    return zstandard


class ZstdDataError(EOFError):
    """A .zst stream that ends inside a frame or whose data does not decode (checksum, corruption)."""


class _ZstdStream(io.RawIOBase):
    """A .zst file decompressed while it is read, frame after frame, in bounded steps.

    Why not ``zstandard``'s own ``stream_reader``: it ends quietly where the input is cut short
    inside a frame, so a truncated download would read as a shorter archive. Here the end of
    the input inside a frame, or data that fails to decode, raises :class:`ZstdDataError`.
    """

    def __init__(self, source: BinaryIO) -> None:
        zstd = _zstandard()
        self.source = source
        self.dctx, self.zstd_error = zstd.ZstdDecompressor(), zstd.ZstdError
        self.frame: Any = None  # decompressor of the frame being read
        self.frames = 0
        self.pending, self.offset = b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self.offset >= len(self.pending):
            if not self._decompress_more():
                return 0
        n = min(len(view), len(self.pending) - self.offset)
        view[:n] = self.pending[self.offset:self.offset + n]
        self.offset += n
        return n

    def _decompress_more(self) -> bool:
        """Decompress the next piece of input; False at the end of input after a complete frame."""
        leftover = b""
        if self.frame is not None and self.frame.eof:
            leftover, self.frame = self.frame.unused_data, None
        chunk = leftover or self.source.read(_ZSTD_IN)
        if not chunk:
            if self.frame is not None:
                raise ZstdDataError(f"the input ends inside zstd frame {self.frames} (cut short)")
            if not self.frames:
                raise ZstdDataError("empty file: no zstd frame")
            return False
        if self.frame is None:
            self.frame, self.frames = self.dctx.decompressobj(), self.frames + 1
        try:
            self.pending, self.offset = self.frame.decompress(chunk), 0
        except self.zstd_error as exc:
            raise ZstdDataError(f"zstd frame {self.frames} does not decode ({exc})") from exc
        return True


def _members(archive: Archive, fileobj: BinaryIO, label: str) -> Iterator[_Member]:
    """The kept members of the zip or tar in ``fileobj``; errors name ``label``."""
    kind = _format(archive.name)
    if kind == "zip":
        try:
            zf = zipfile.ZipFile(fileobj)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise PrepareError(f"{label}: not a complete zip archive ({exc}); the download is probably truncated "
                               f"or damaged: download it again from {archive.url}") from exc
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                rel = _clean_member(archive, label, info.filename)
                if rel is not None:
                    yield _Member(rel, info.file_size, lambda info=info: zf.open(info))  # type: ignore[misc]
        return
    if kind == "tar":
        # a .tar.zst is read as a stream (its decompressor cannot seek): members strictly in order
        zst = archive.name.lower().endswith(ZSTD_SUFFIXES)
        stream: Any = io.BufferedReader(_ZstdStream(fileobj), _CHUNK) if zst else fileobj
        try:
            tf = tarfile.open(fileobj=stream, mode="r|" if zst else "r:*")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise PrepareError(f"{label}: not a readable tar archive ({exc}); the download is probably truncated "
                               f"or damaged: download it again from {archive.url}") from exc
        with tf:
            entries = iter(tf)
            while True:
                try:
                    info = next(entries)
                except StopIteration:
                    break
                except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
                    raise _damaged(label, archive, exc) from exc
                if not info.isfile():
                    continue
                rel = _clean_member(archive, label, info.name)
                if rel is not None:
                    yield _Member(rel, info.size, lambda info=info: tf.extractfile(info))  # type: ignore[misc]
            # tarfile ends quietly at a header cut short: a plain tar must still hold its two
            # zero blocks (end-of-archive) after the last member
            if archive.name.lower().endswith(".tar") and _remaining(fileobj) < 2 * tarfile.BLOCKSIZE:
                raise _damaged(label, archive, EOFError("no end-of-archive blocks after the last member"))
            if zst:  # tarfile stops at the end-of-archive blocks: read on to the end of the last
                try:  # frame, so a cut in the padding or a failed checksum is caught too
                    while stream.read(_CHUNK):
                        pass
                except EOFError as exc:
                    raise _damaged(label, archive, exc) from exc
        return
    if kind == "foreign":
        raise PrepareError(f"{label}: {Path(archive.name).suffix} archives cannot be read by Python's standard "
                           f"library; unpack it yourself into {archive.unpacked_name}/ next to it and rerun "
                           "(the unpacked folder is then used, copied or linked)")
    raise PrepareError(f"{label}: not an archive; expected one of {', '.join(ZIP_SUFFIXES + TAR_SUFFIXES)}")


# -- checksums ------------------------------------------------------------------------------------------
def md5_of(paths: Sequence[Path], advance: Callable[[int], None] | None = None) -> str:
    digest = hashlib.md5()
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                if advance:
                    advance(len(chunk))
    return digest.hexdigest()


# -- the engine ----------------------------------------------------------------------------------------
class _Progress:
    """A rich progress bar (bytes) on stderr, or nothing."""

    def __init__(self, enabled: bool, console: Any = None) -> None:
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), TimeRemainingColumn(),
                                console=console or Console(stderr=True), transient=False)

    def __enter__(self) -> _Progress:
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar:
            self.bar.__exit__(*exc)

    def task(self, description: str, total: int) -> Callable[[int], None]:
        if not self.bar:
            return lambda n: None
        task_id = self.bar.add_task(description, total=total)
        return lambda n: self.bar.advance(task_id, n)  # type: ignore[union-attr]

    def log(self, message: str) -> None:
        if self.bar:
            self.bar.console.print(message)


def _write_json(path: Path, data: Any) -> None:
    """Atomically (a marker is either absent or complete), and only when it changes (a rerun
    with nothing to do writes nothing)."""
    text = json.dumps(data, indent=1, sort_keys=True)
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    atomic_write.write_text(path, text)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fixture_checksums(downloads: Path) -> dict[str, Any] | None:
    """A fixture written by :func:`write_archive_fixture` carries its own archives' md5s."""
    data = _read_json(downloads / FIXTURE_MARKER)
    return data if isinstance(data, dict) else None


def _verify(source: _Source, expected: str, state: Path, progress: _Progress) -> None:
    """Compare the source file(s) with ``expected``; a verified fingerprint is remembered."""
    cache_path = state / "verified.json"
    cache = _read_json(cache_path) or {}
    fingerprint = json.dumps(source.fingerprint())
    if cache.get(source.archive.key) == [fingerprint, expected]:
        return
    total = sum(p.stat().st_size for p in source.paths)
    got = md5_of(source.paths, progress.task(f"md5 {source.archive.name}", total))
    if got != expected:
        raise PrepareError(
            f"{source.paths[0] if len(source.paths) == 1 else source.archive.name}: md5 {got} differs from the "
            f"published {expected} ({total:,} bytes read; a truncated or different download): download it again "
            f"from {source.archive.url}, or pass --no-verify if your copy is known good")
    cache[source.archive.key] = [fingerprint, expected]
    _write_json(cache_path, cache)


def _link_or_copy(src: Path, dst: Path, link: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link == "hardlink":
        try:
            os.link(src, dst)
        except OSError as exc:
            raise PrepareError(f"{src}: cannot hard-link into {dst.parent} ({exc}); the downloads and the output "
                               "must be on one filesystem for --link hardlink; use --link symlink or copy") from exc
    elif link == "symlink":
        os.symlink(src.resolve(), dst)
    else:
        shutil.copy2(src, dst)


def _stage(source: _Source, staging: Path, link: str, progress: _Progress) -> list[str]:
    """Unpack (or link) one archive's kept content into ``staging``; returns the relative paths
    below the prepared root. On any error the staging folder is removed."""
    archive = source.archive
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    files: list[str] = []
    dest = PurePosixPath(archive.dest) if archive.dest else PurePosixPath()
    try:
        if source.kind == "file" and _format(archive.name) == "plain":
            out = str(dest / PurePosixPath(archive.name).name)
            _link_or_copy(source.paths[0], staging / out, link)
            files.append(out)
        elif source.kind == "folder":
            folder = source.paths[0]
            entries = sorted(p for p in folder.rglob("*") if p.is_file())
            advance = progress.task(f"{link} {folder.name}/", len(entries))
            for path in entries:
                rel = _clean_member(archive, str(folder), path.relative_to(folder).as_posix())
                advance(1)
                if rel is None:
                    continue
                out = str(dest / rel)
                _link_or_copy(path, staging / out, link)
                files.append(out)
        else:
            with tempfile.TemporaryDirectory(dir=staging.parent) as tmp:
                paths, label = source.paths, (str(source.paths[0]) if len(source.paths) == 1
                                              else f"{archive.name} (parts {', '.join(archive.parts)})")
                if source.kind == "member":
                    paths, label = [_extract_member(source, Path(tmp))], f"{source.paths[0]}!{archive.name}"
                total = sum(p.stat().st_size for p in paths)
                advance = progress.task(f"unpack {archive.name}", total)
                with _open_bytes(paths) as fileobj:
                    seen: set[str] = set()
                    last = 0
                    for member in _members(archive, fileobj, label):
                        out = str(dest / member.rel)
                        target = staging / out
                        target.parent.mkdir(parents=True, exist_ok=True)
                        try:
                            with member.read() as src, open(target, "wb") as dst:
                                shutil.copyfileobj(src, dst, _CHUNK)
                        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
                            raise _damaged(label, archive, exc, f"member {member.rel}") from exc
                        if out not in seen:  # a name stored twice: the later copy wins, as with unzip
                            seen.add(out)
                            files.append(out)
                        pos = fileobj.tell()
                        advance(max(0, pos - last))
                        last = pos
                    advance(max(0, total - last))  # the index and padding after the last member
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not files and not archive.optional:
        shutil.rmtree(staging, ignore_errors=True)
        raise PrepareError(f"{source.paths[0]}: holds nothing the recipe keeps (patterns {', '.join(archive.include)}"
                           f"{' below ' + archive.top + '/' if archive.top else ''}); is it the right file? "
                           f"It comes from {archive.url}")
    return sorted(files)


def _extract_member(source: _Source, tmp: Path) -> Path:
    """Copy the archive member ``source.archive.name`` out of the outer zip/tar into ``tmp``."""
    archive, outer = source.archive, source.paths[0]
    holder = Archive(name=archive.inside, url=archive.url, include=(archive.name,))
    target = tmp / PurePosixPath(archive.name).name
    with open(outer, "rb") as fileobj:
        for member in _members(holder, fileobj, str(outer)):
            with member.read() as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            return target
    raise PrepareError(f"{outer}: has no member {archive.name}; is it the archive from {archive.url}?")


def _move(src: Path, dst: Path) -> None:
    """One file into place: a rename (staging lives in the output root, on its filesystem)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def _install(staging: Path, out: Path, files: Sequence[str], stale: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Rename the staged files into place; files an earlier version of the archive gave and this
    one does not are removed, so a replaced download leaves the tree a fresh prepare would."""
    for rel in sorted(stale):
        (out / rel).unlink(missing_ok=True)
    for rel in files:
        src = staging / rel
        if src.is_symlink() or src.exists():
            _move(src, out / rel)


def prepare(info: DatasetInfo, downloads: str | Path, out: str | Path, *, link: str = "copy",
            verify: bool = True, variant: str | None = None, check: bool = True, progress: bool = True,
            console: Any = None, recipe: Recipe | None = None) -> dict[str, Any]:
    """Unpack ``info``'s downloads into ``out`` in the layout ``info.check`` accepts, then check it.

    ``link`` (copy | hardlink | symlink) applies to archives found already unpacked in the
    downloads folder. ``verify`` compares published checksums (a fixture's own where the
    downloads are a fixture). ``recipe`` overrides ``info.archives``. Returns a summary: variant,
    per-archive action, check result.
    """
    if link not in LINK_MODES:
        raise PrepareError(f"--link {link}: expected one of {', '.join(LINK_MODES)}")
    downloads, out = Path(downloads), Path(out)
    if not downloads.is_dir():
        raise PrepareError(f"{downloads}: no such downloads folder")
    if out.resolve() == downloads.resolve() or downloads.resolve() in out.resolve().parents:
        raise PrepareError(f"{out}: the output must not be inside the downloads folder {downloads}, "
                           "which is never modified")
    recipe = recipe or recipe_of(info)
    chosen, sources = _choose(recipe, downloads, variant)
    fixture = _fixture_checksums(downloads)
    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    actions: dict[str, str] = {}
    with FileLock(str(state / "lock")), _Progress(progress, console) as bar:
        pending: list[tuple[_Source, str]] = []
        for source in sources:
            fingerprint = json.dumps([source.fingerprint(), link, source.archive.dest, source.archive.top,
                                      list(source.archive.include)])
            done = _read_json(state / "done" / f"{source.archive.key}.json")
            if done and done.get("source") == fingerprint and all(
                    os.path.lexists(out / rel) for rel in done.get("files", [])):
                actions[source.archive.name] = "up to date"
                continue
            pending.append((source, fingerprint))
        # 1. checksums of everything still to do, before anything is unpacked
        for source, _ in pending:
            # a fixture's archives carry the fixture's md5s, not the provider's; members of an
            # outer archive and unpacked folders have no published checksum of their own
            expected = source.archive.md5 if fixture is None else (fixture.get("archives") or {}).get(
                source.archive.name, "")
            if verify and expected and source.kind == "file":
                _verify(source, expected, state, bar)
        # 2. stage every pending archive; a failure leaves the layout untouched
        staged: list[tuple[_Source, str, Path, list[str]]] = []
        for source, fingerprint in pending:
            staging = state / "staging" / source.archive.key
            marker = state / "staging" / f"{source.archive.key}.staged.json"
            previous = _read_json(marker)
            if previous and previous.get("source") == fingerprint and all(
                    os.path.lexists(staging / rel) for rel in previous["files"]):
                files = previous["files"]
            else:
                marker.unlink(missing_ok=True)
                files = _stage(source, staging, link, bar)
                _write_json(marker, {"source": fingerprint, "files": files})
            staged.append((source, fingerprint, staging, files))
        # 3. rename into place, archive by archive, each followed by its completion marker
        for source, fingerprint, staging, files in staged:
            previous = _read_json(state / "done" / f"{source.archive.key}.json") or {}
            _install(staging, out, files, stale=set(previous.get("files", [])) - set(files))
            _write_json(state / "done" / f"{source.archive.key}.json",
                        {"archive": source.archive.name, "source": fingerprint, "files": files})
            (state / "staging" / f"{source.archive.key}.staged.json").unlink(missing_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            actions[source.archive.name] = f"prepared ({len(files)} files)"
        shutil.rmtree(state / "staging", ignore_errors=True)
    if fixture is not None:
        _write_json(out / FIXTURE_MARKER, {"dataset": fixture.get("dataset", info.name),
                                           "seed": fixture.get("seed", 0)})
    _write_json(out / PREPARED_MARKER, {"dataset": info.name, "variant": chosen.name,
                                        "archives": sorted(actions), "link": link})
    summary: dict[str, Any] = {"dataset": info.name, "variant": chosen.name, "root": str(out), "actions": actions}
    if check:
        summary["check"] = info.check(out)
    return summary


# -- fixtures as archives -------------------------------------------------------------------------------
def _zip_bytes(entries: Sequence[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buffer.getvalue()


def _tar_bytes(entries: Sequence[tuple[str, bytes]], name: str) -> bytes:
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for member, data in entries:
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tf.addfile(info, io.BytesIO(data))
    lower = name.lower()
    if lower.endswith((".tar.gz", ".tgz")):
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
            gz.write(raw.getvalue())
        return out.getvalue()
    if lower.endswith((".tar.bz2", ".tbz2")):
        import bz2

        return bz2.compress(raw.getvalue())
    if lower.endswith((".tar.xz", ".txz")):
        import lzma

        return lzma.compress(raw.getvalue())
    if lower.endswith(ZSTD_SUFFIXES):  # one frame with its checksum, as zstd's command line writes it
        return _zstandard().ZstdCompressor(level=3, write_checksum=True).compress(raw.getvalue())
    return raw.getvalue()


def pack(name: str, entries: Sequence[tuple[str, bytes]]) -> bytes:
    """The bytes of a zip or tar(.gz/.bz2/.xz/.zst) named ``name`` holding ``entries``; deterministic."""
    entries = sorted(entries)
    kind = _format(name)
    if kind == "zip":
        return _zip_bytes(entries)
    if kind == "tar":
        return _tar_bytes(entries, name)
    raise PrepareError(f"{name}: cannot write this archive format; expected one of "
                       + ", ".join(ZIP_SUFFIXES + TAR_SUFFIXES))


def _entries_for(archive: Archive, tree: Path, files: Sequence[str]) -> list[tuple[str, bytes]]:
    """The fixture files this archive holds, named as inside the published archive."""
    dest = archive.dest.rstrip("/")
    if _format(archive.name) == "plain":
        rel = f"{dest}/{PurePosixPath(archive.name).name}" if dest else PurePosixPath(archive.name).name
        return [(rel, (tree / rel).read_bytes())] if rel in files else []
    chosen = []
    for rel in files:
        if dest and not rel.startswith(dest + "/"):
            continue
        below = rel[len(dest) + 1:] if dest else rel
        if any(fnmatch.fnmatchcase(below, p) for p in archive.include):
            chosen.append(below)
    i, n = archive.share
    chosen = sorted(chosen)[i::n]
    top = archive.top.rstrip("/")
    return [(f"{top}/{below}" if top else below, (tree / dest / below).read_bytes()) for below in chosen]


def write_archive_fixture(info: DatasetInfo, out: str | Path, seed: int = 0, variant: str | None = None,
                          recipe: Recipe | None = None, source: str | Path | None = None) -> Path:
    """Write ``info``'s fixture packed as its providers' archives (same names and nesting) under ``out``.

    The fixture's own md5s go into the fixture marker, so ``prepare`` verifies them as it would
    the published ones; ``prepare`` then reproduces the fixture's layout. ``source`` packs a
    fixture already written (by the variant's writer with this ``seed``) instead of writing one.
    """
    recipe = recipe or recipe_of(info)
    chosen = recipe.variant(variant)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writer = (lambda o, seed: load_object(chosen.fixture)(o, seed=seed)) if chosen.fixture else info.write_fixture
    checksums: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(source) if source is not None else Path(tmp)
        if source is None:
            writer(base, seed=seed)
        tree = base / chosen.fixture_dir if chosen.fixture_dir else base
        files = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*")
                       if p.is_file() and p.name != FIXTURE_MARKER)
        outer: dict[str, list[tuple[str, bytes]]] = {}
        for archive in chosen.archives:
            entries = _entries_for(archive, tree, files)
            if not entries:
                if archive.optional:
                    continue
                raise PrepareError(f"{info.name}: the fixture has no files for {archive.name} "
                                   f"(dest {archive.dest or '.'}, patterns {', '.join(archive.include)})")
            data = entries[0][1] if _format(archive.name) == "plain" else pack(archive.name, entries)
            if archive.inside:
                outer.setdefault(archive.inside, []).append((archive.name, data))
                continue
            _write_file(out, archive, data, checksums)
        for name, entries in outer.items():
            data = pack(name, entries)
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
            checksums[name] = hashlib.md5(data).hexdigest()
    _write_json(out / FIXTURE_MARKER, {"dataset": info.name, "seed": seed, "variant": chosen.name,
                                       "archives": checksums})
    return out


def _write_file(out: Path, archive: Archive, data: bytes, checksums: dict[str, str]) -> None:
    if archive.parts:
        n = len(archive.parts)
        step = -(-len(data) // n)
        for k, part in enumerate(archive.parts):
            (out / part).parent.mkdir(parents=True, exist_ok=True)
            (out / part).write_bytes(data[k * step:(k + 1) * step])
    else:
        (out / archive.name).parent.mkdir(parents=True, exist_ok=True)
        (out / archive.name).write_bytes(data)
    checksums[archive.name] = hashlib.md5(data).hexdigest()
