"""Extract a root filesystem from a tar archive without writing outside it.

`extract_rootfs` unpacks .tar, .tar.gz/.tgz, .tar.xz, .tar.bz2 and .tar.zst
archives. It detects the compression from the first bytes of the file, never
from its name. The zstandard package is imported only for zstd archives.

Extraction usually runs as root, so a hostile archive must not be able to
write outside the target directory. The rules, each covered by
tests/test_rootfs_archive.py:

- Leading slashes are removed from member names ("/etc/passwd" is extracted
  to <root>/etc/passwd). A name with a ".." component is rejected.
- The parent directory of every member is opened with openat2(2) and
  RESOLVE_IN_ROOT relative to the root directory. Symlinks on the way resolve
  as they would inside the container, and the kernel keeps them inside the
  root. The last component is never followed: whatever exists there is
  removed and files are created with O_CREAT | O_EXCL | O_NOFOLLOW.
- Symlinks are created with their target unchanged, because inside the
  container they resolve against the container's root.
- A hard link target must be a relative archive name without "..". It is
  resolved like a member name, and linkat(2) links a symlink target itself
  instead of following it.
- Device nodes and FIFOs are skipped and counted unless allow_devices=True.
- Owners are the numeric uid and gid from the archive. User and group names
  are ignored, because they would be looked up in the host's passwd database.
- Modes are kept exactly, including setuid, setgid and sticky bits, because a
  root filesystem needs them (su, passwd, /tmp). A hostile archive can
  therefore plant a setuid-root program: keep the rootfs in a directory that
  other host users cannot enter (scripts/build-rootfs warns about it).
- Directory modes, owners and times are applied after all members are
  written, so a read-only directory does not block its own content.
- OCI layer whiteouts are applied (see `extract_rootfs`).
- The uncompressed size and the member count are limited (ArchiveLimitError).
- A truncated or corrupt archive raises ArchiveError naming the archive and
  the member. The caller removes the partial tree; scripts/build-rootfs
  extracts into a temporary directory for that reason.

Why not tarfile's extraction filters (PEP 706): they arrived in Python 3.11.4,
and Debian 12's /usr/bin/python3 (3.11.2) does not have them. They also do not
fit a root filesystem. Both the "tar" and the "data" filter clear setuid,
setgid and sticky bits and group/other write bits, and "data" also rejects
device files and absolute symlinks, which distribution images contain. Their
containment check resolves each name with os.path.realpath on the host before
the member is written, so a symlink that appears between the check and the
write is followed. Here the kernel resolves each open inside the root instead.
"""

import errno
import logging
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass

from navio_runtime.errors import ArchiveError, ArchiveLimitError, SyscallError, UnsafeMemberError
from navio_runtime.linux import syscalls

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_MEMBERS",
    "ExtractStats",
    "detect_compression",
    "extract_rootfs",
]

log = logging.getLogger(__name__)

# Generous for distribution images (by estimate, a full desktop system is a
# few GiB in a few hundred thousand files) and finite, so that a tar bomb stops
# with a clear error. Callers with larger trusted archives pass their own limits.
DEFAULT_MAX_BYTES = 16 << 30
DEFAULT_MAX_MEMBERS = 1_000_000

# Magic numbers at offset 0 (RFC 1952 for gzip, the .xz and zstd format
# specifications, and bzip2's "BZh" followed by the block size digit).
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
)

_BLOCK_SIZE = tarfile.BLOCKSIZE
_COPY_CHUNK = 1 << 20
# zstd compressed 256 MiB of zeros 32696:1 (level 19, zstandard 0.25), so
# feeding the decoder 1 KiB at a time bounds one call to about 32 MiB of output.
_ZSTD_INPUT_CHUNK = 1024

_OPAQUE_WHITEOUT = ".wh..wh..opq"
_WHITEOUT_PREFIX = ".wh."
# AUFS keeps its own bookkeeping under this prefix, which is not an OCI whiteout.
_AUFS_META_PREFIX = ".wh..wh."

_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS


@dataclass
class ExtractStats:
    """Counts of what `extract_rootfs` wrote and skipped."""

    compression: str = "none"  # "none", "gzip", "xz", "bzip2" or "zstd"
    members: int = 0  # archive members read, including skipped ones
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    devices: int = 0  # character and block device nodes created
    fifos: int = 0
    skipped_devices: int = 0  # device nodes not created because allow_devices is False
    skipped_fifos: int = 0
    skipped_unknown: int = 0  # members of a type tar does not define
    whiteouts: int = 0  # whiteout and opaque markers applied
    file_bytes: int = 0  # bytes of regular file content written
    rerooted_names: int = 0  # absolute member names extracted below the root
    setid_files: int = 0  # regular files with the setuid or setgid bit


class _CorruptArchive(Exception):
    """The compressed or tar stream ended early or failed to decode."""


class _LimitExceeded(Exception):
    """The uncompressed stream grew past max_bytes."""


def detect_compression(archive_path) -> str:
    """Return "gzip", "xz", "zstd", "bzip2" or "none" from the first bytes of the file."""
    with open(archive_path, "rb") as archive:
        head = archive.read(8)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


def extract_rootfs(
    archive_path,
    rootfs_dir,
    *,
    allow_devices=False,
    max_bytes=DEFAULT_MAX_BYTES,
    max_members=DEFAULT_MAX_MEMBERS,
    apply_whiteouts=True,
    preserve_owners=None,
) -> ExtractStats:
    """Extract the tar archive at `archive_path` into `rootfs_dir` and return the counts.

    `rootfs_dir` is created (mode 0755) if it is missing. Existing content is
    kept and overwritten member by member, so OCI layers can be applied one
    after another. The caller must trust the path `rootfs_dir` itself, but
    nothing below it.

    allow_devices: create device nodes and FIFOs with mknod(2) and their exact
        mode. Otherwise they are skipped and counted in the result.
    max_bytes: maximum size of the uncompressed tar stream, which bounds the
        file content written. Exceeding it raises ArchiveLimitError.
    max_members: maximum number of archive members.
    apply_whiteouts: treat ".wh.NAME" as an OCI whiteout that removes NAME,
        and ".wh..wh..opq" as an opaque marker that removes the content of its
        directory, in both cases only what existed before this extraction.
        Markers are never written to disk. With False they are extracted as
        ordinary files.
    preserve_owners: set the archive's uid and gid on every entry. None means
        "when running as root" because other users cannot chown.

    Raises UnsafeMemberError for a member name or hard link that would leave
    the root, ArchiveLimitError past a limit, and ArchiveError for a corrupt
    or truncated archive or a failed write. On error the tree is left
    partly extracted.
    """
    if preserve_owners is None:
        preserve_owners = os.geteuid() == 0
    archive_path = os.fspath(archive_path)
    rootfs_dir = os.fspath(rootfs_dir)

    root_fd = _open_root(archive_path, rootfs_dir)
    try:
        extractor = _Extractor(
            archive_path,
            root_fd,
            allow_devices=allow_devices,
            max_bytes=max_bytes,
            max_members=max_members,
            apply_whiteouts=apply_whiteouts,
            preserve_owners=preserve_owners,
        )
        return extractor.run()
    finally:
        os.close(root_fd)


def _open_root(archive_path, rootfs_dir):
    try:
        os.mkdir(rootfs_dir, 0o755)
    except FileExistsError:
        pass
    except OSError as error:
        raise ArchiveError(archive_path, "", f"cannot create the rootfs directory {rootfs_dir}: {_describe(error)}") from None
    else:
        # mkdir applied the umask, but a rootfs must be searchable by every user.
        os.chmod(rootfs_dir, 0o755)

    try:
        return os.open(rootfs_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise ArchiveError(archive_path, "", f"cannot open the rootfs directory {rootfs_dir}: {_describe(error)}") from None


def _describe(error):
    name = errno.errorcode.get(error.errno, str(error.errno))
    return f"{os.strerror(error.errno)} ({name})" if error.errno else str(error)


# ---------------------------------------------------------------------------
# Decompression: a forward-only stream that tarfile reads in "r:" mode
# ---------------------------------------------------------------------------


class _TarStream:
    """The uncompressed tar stream of an archive, readable forward only.

    tarfile reads it with read(), tell() and forward seek(). Every decoder
    error becomes _CorruptArchive and growing past `max_bytes` raises
    _LimitExceeded, so the caller can tell archive faults from file system
    errors. The last 512-byte read is kept to check the end-of-archive block.
    """

    def __init__(self, raw, compression, max_bytes):
        self._raw = raw
        self._max_bytes = max_bytes
        self._position = 0
        self.last_block_offset = -1
        self.last_block = b""
        self._source, self._decoder_errors = self._open_decoder(raw, compression)

    @staticmethod
    def _open_decoder(raw, compression):
        """Return the decoder for `compression` and the exceptions that mean corrupt input."""
        # Each module raises EOFError when the input ends early. The other
        # exceptions are those of a damaged stream (BadGzipFile is an OSError).
        if compression == "gzip":
            import gzip
            import zlib

            return gzip.GzipFile(fileobj=raw, mode="rb"), (EOFError, OSError, zlib.error)
        if compression == "xz":
            import lzma

            return lzma.LZMAFile(raw, mode="rb"), (EOFError, OSError, lzma.LZMAError)
        if compression == "bzip2":
            import bz2

            return bz2.BZ2File(raw, mode="rb"), (EOFError, OSError)
        if compression == "zstd":
            return _ZstdReader(raw), (OSError,)
        return raw, (OSError,)

    def tell(self):
        return self._position

    def seekable(self):
        return True

    def seek(self, offset, whence=os.SEEK_SET):
        if whence == os.SEEK_CUR:
            offset += self._position
        elif whence != os.SEEK_SET:
            raise _CorruptArchive(f"unsupported seek whence {whence}")
        if offset < self._position:
            raise _CorruptArchive(f"backward seek from offset {self._position} to {offset} in a forward-only stream")
        while self._position < offset:
            if not self.read(min(offset - self._position, _COPY_CHUNK)):
                break
        return self._position

    def read(self, size=-1):
        """Read up to `size` bytes (all that is left when size < 0), in bounded pieces."""
        start = self._position
        pieces = []
        remaining = size if size is not None and size >= 0 else None
        while remaining is None or remaining > 0:
            want = _COPY_CHUNK if remaining is None else min(remaining, _COPY_CHUNK)
            piece = self._read_source(want)
            if not piece:
                break
            self._position += len(piece)
            if self._position > self._max_bytes:
                raise _LimitExceeded(f"the uncompressed archive exceeds the limit of {self._max_bytes} bytes")
            pieces.append(piece)
            if remaining is not None:
                remaining -= len(piece)
        data = b"".join(pieces)
        if size == _BLOCK_SIZE:
            self.last_block_offset = start
            self.last_block = data
        return data

    def _read_source(self, size):
        try:
            return self._source.read(size)
        except self._decoder_errors as error:
            raise _CorruptArchive(f"{type(error).__name__}: {error}") from None

    def drain(self):
        """Read to the end so that the decoder verifies the stream's checksum and end marker."""
        while self.read(_COPY_CHUNK):
            pass


class _ZstdReader:
    """A zstd decoder that fails on a truncated frame.

    zstandard's stream_reader returns short data without an error when the
    input ends inside a frame (zstandard 0.25), so this reader drives
    decompressobj() itself and checks that the last frame reached its end.
    """

    def __init__(self, raw):
        import zstandard

        self._zstandard = zstandard
        self._raw = raw
        self._context = zstandard.ZstdDecompressor()
        self._frame = None
        self._buffer = bytearray()
        self._input_done = False

    def read(self, size):
        while len(self._buffer) < size and not self._input_done:
            self._feed()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _feed(self):
        chunk = self._raw.read(_ZSTD_INPUT_CHUNK)
        if not chunk:
            self._input_done = True
            if self._frame is not None and not self._frame.eof:
                raise _CorruptArchive("zstd stream ends inside a frame (the file is truncated)")
            return
        try:
            while chunk:
                if self._frame is None:
                    self._frame = self._context.decompressobj()
                self._buffer += self._frame.decompress(chunk)
                if self._frame.eof:
                    # The next frame, if any, starts in the unused input.
                    chunk = self._frame.unused_data
                    self._frame = None
                else:
                    chunk = b""
        except self._zstandard.ZstdError as error:
            raise _CorruptArchive(f"zstd: {error}") from None


# ---------------------------------------------------------------------------
# Member names
# ---------------------------------------------------------------------------


def _split_name(archive, member_name, name, what="member name"):
    """Return the components of `name` and whether it was absolute.

    Empty and "." components are dropped. Raise UnsafeMemberError for "..".
    """
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeMemberError(archive, member_name, f'{what} {name!r} contains "..", which could leave the rootfs')
    return tuple(parts), name.startswith("/")


def _join(parts):
    return "/".join(parts) if parts else "."


# ---------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------


@dataclass
class _DirectoryAttributes:
    """Mode, owner and mtime of a directory member, applied once all members are written."""

    parts: tuple
    device: int
    inode: int
    mode: int
    uid: int
    gid: int
    mtime_ns: int | None


class _Extractor:
    def __init__(self, archive, root_fd, *, allow_devices, max_bytes, max_members, apply_whiteouts, preserve_owners):
        self.archive = archive
        self.root_fd = root_fd
        self.allow_devices = allow_devices
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.apply_whiteouts = apply_whiteouts
        self.preserve_owners = preserve_owners
        self.stats = ExtractStats()
        # Paths written by this extraction, and the directories above them.
        # Whiteouts remove only entries that are in neither set.
        self.created = set()
        self.created_ancestors = set()
        # Paths of skipped members, so that a hard link to one is skipped too.
        self.skipped = set()
        self.directories = {}
        # The member being extracted, or the last one when reading a header.
        self.member_name = ""
        self.in_member = False

    # --- Driver ------------------------------------------------------------

    def run(self):
        try:
            raw = open(self.archive, "rb")
        except OSError as error:
            raise ArchiveError(self.archive, "", f"cannot open the archive: {_describe(error)}") from None
        with raw:
            self.stats.compression = detect_compression(self.archive)
            if self.stats.compression == "zstd":
                _require_zstandard(self.archive)
            log.debug("extracting %s (%s compression)", self.archive, self.stats.compression)
            try:
                stream = _TarStream(raw, self.stats.compression, self.max_bytes)
                self._extract_members(stream)
            except _LimitExceeded as error:
                raise ArchiveLimitError(
                    self.archive,
                    self.member_name if self.in_member else "",
                    f"{error}; pass a larger max_bytes (--max-bytes) if the archive is trusted",
                ) from None
            except (_CorruptArchive, tarfile.TarError) as error:
                raise self._corrupt_error(error) from None
        self._apply_directory_attributes()
        return self.stats

    def _corrupt_error(self, error):
        if self.in_member:
            return ArchiveError(self.archive, self.member_name, f"the archive is truncated or corrupt in this member: {error}")
        if not self.member_name:
            return ArchiveError(self.archive, "", f"not a tar archive, or truncated or corrupt at the first member: {error}")
        return ArchiveError(
            self.archive, "", f"the archive is truncated or corrupt after member {self.member_name!r}: {error}"
        )

    def _extract_members(self, stream):
        # "r:" reads headers and data through our stream, which already decodes
        # the compression, so tarfile's own detection is not used.
        with tarfile.open(fileobj=stream, mode="r:", encoding="utf-8", errors="surrogateescape") as tar:
            while True:
                self.in_member = False
                member = tar.next()
                if member is None:
                    break
                # tarfile keeps every TarInfo for random access, which we never use.
                tar.members.clear()
                self.stats.members += 1
                if self.stats.members > self.max_members:
                    raise ArchiveLimitError(
                        self.archive,
                        member.name,
                        f"the archive has more than {self.max_members} members; "
                        "pass a larger max_members (--max-members) if the archive is trusted",
                    )
                self.member_name = member.name
                self.in_member = True
                self._extract_member(tar, member)
            self._check_end_of_archive(tar, stream)
        stream.drain()

    def _check_end_of_archive(self, tar, stream):
        # tarfile stops without an error at a short or invalid header after the
        # first member, so an archive cut at a member boundary would look complete.
        # A proper end is a block of 512 zero bytes where the next header belongs.
        at_end = stream.last_block_offset == tar.offset and len(stream.last_block) == _BLOCK_SIZE
        if not (at_end and not stream.last_block.strip(b"\0")):
            raise _CorruptArchive(f"no end-of-archive block at offset {tar.offset}")

    def _extract_member(self, tar, member):
        parts, absolute = _split_name(self.archive, member.name, member.name)
        if absolute:
            if self.stats.rerooted_names == 0:
                log.warning("%s: removing the leading '/' from member names such as %r", self.archive, member.name)
            self.stats.rerooted_names += 1

        if self.preserve_owners:
            _check_owner(self.archive, member)

        if not parts:
            if not member.isdir():
                raise UnsafeMemberError(self.archive, member.name, "a member other than a directory names the root itself")
            try:
                self._record_directory((), member, self.root_fd, ".")
            except OSError as error:
                raise ArchiveError(self.archive, member.name, f"cannot open the rootfs directory: {_describe(error)}") from None
            return

        if self.apply_whiteouts and parts[-1].startswith(_WHITEOUT_PREFIX):
            self._apply_whiteout(member, parts)
            return

        if member.ischr() or member.isblk() or member.isfifo():
            if not self.allow_devices:
                self._skip_special(member, parts)
                return

        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()
                or member.ischr() or member.isblk() or member.isfifo()):
            log.warning("%s: skipping member %r of unknown type %r", self.archive, member.name, member.type)
            self.stats.skipped_unknown += 1
            self.skipped.add(_join(parts))
            return

        parent_fd = self._open_parent(member.name, parts[:-1], create=True)
        try:
            self._create_entry(tar, member, parts, parent_fd)
        except OSError as error:
            raise ArchiveError(self.archive, member.name, f"cannot create {_join(parts)}: {_describe(error)}") from None
        except (ValueError, OverflowError) as error:
            # os.makedev and friends reject out-of-range numbers from the header.
            raise ArchiveError(self.archive, member.name, f"invalid header value: {error}") from None
        finally:
            os.close(parent_fd)
        self._mark_created(parts)

    def _mark_created(self, parts):
        self.created.add(_join(parts))
        for length in range(1, len(parts)):
            self.created_ancestors.add(_join(parts[:length]))

    def _create_entry(self, tar, member, parts, parent_fd):
        name = parts[-1]
        if member.isdir():
            self._make_directory(member, parts, parent_fd)
        elif member.isreg():
            self._write_file(tar, member, parts, parent_fd)
        elif member.issym():
            self._remove_entry(parent_fd, name)
            os.symlink(member.linkname, name, dir_fd=parent_fd)
            self._set_link_attributes(member, parent_fd, name)
            self.stats.symlinks += 1
        elif member.islnk():
            self._make_hard_link(member, parts, parent_fd)
        else:
            self._make_special(member, parent_fd, name)

    # --- Parent directories ----------------------------------------------------

    def _open_parent(self, member_name, parts, *, create):
        """Return an O_PATH descriptor of directory `parts`, resolved inside the root.

        With `create`, missing directories (implied by a member name but not listed
        in the archive) are created with mode 0755. The caller closes the descriptor.
        """
        try:
            return syscalls.openat2(self.root_fd, _join(parts), os.O_PATH | os.O_DIRECTORY, resolve=_RESOLVE)
        except SyscallError as error:
            if error.errno != errno.ENOENT or not create:
                raise self._parent_error(member_name, parts, error) from None

        fd = os.dup(self.root_fd)
        try:
            for index, part in enumerate(parts):
                prefix = parts[: index + 1]
                try:
                    next_fd = syscalls.openat2(self.root_fd, _join(prefix), os.O_PATH | os.O_DIRECTORY, resolve=_RESOLVE)
                except SyscallError as error:
                    if error.errno != errno.ENOENT:
                        raise self._parent_error(member_name, prefix, error) from None
                    self._make_implicit_directory(member_name, fd, part, prefix)
                    next_fd = syscalls.openat2(self.root_fd, _join(prefix), os.O_PATH | os.O_DIRECTORY, resolve=_RESOLVE)
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _make_implicit_directory(self, member_name, parent_fd, name, parts):
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            # openat2 found nothing, yet the name exists, so it is a symlink whose
            # target is missing inside the root. Creating through it is rejected.
            raise UnsafeMemberError(
                self.archive,
                member_name,
                f"{_join(parts)} is a symlink to a directory that does not exist in the rootfs",
            ) from None
        except OSError as error:
            raise ArchiveError(self.archive, member_name, f"cannot create directory {_join(parts)}: {_describe(error)}") from None
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            os.fchmod(fd, 0o755)
        finally:
            os.close(fd)
        self._mark_created(parts)

    def _parent_error(self, member_name, parts, error):
        path = _join(parts)
        if error.errno == errno.ELOOP:
            return UnsafeMemberError(
                self.archive, member_name, f"cannot resolve {path} inside the rootfs: too many levels of symlinks (ELOOP)"
            )
        if error.errno == errno.ENOTDIR:
            return ArchiveError(self.archive, member_name, f"{path} is not a directory (ENOTDIR)")
        return ArchiveError(self.archive, member_name, f"cannot open directory {path}: {_describe(error)}")

    # --- Entries -----------------------------------------------------------------

    def _remove_entry(self, parent_fd, name):
        """Remove `name` in `parent_fd` without following it, and a directory with its content."""
        try:
            info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=parent_fd)
        else:
            os.unlink(name, dir_fd=parent_fd)

    def _make_directory(self, member, parts, parent_fd):
        name = parts[-1]
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode):
                os.unlink(name, dir_fd=parent_fd)
                os.mkdir(name, 0o700, dir_fd=parent_fd)
        self._record_directory(parts, member, parent_fd, name)
        self.stats.directories += 1

    def _record_directory(self, parts, member, parent_fd, name):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            info = os.fstat(fd)
        finally:
            os.close(fd)
        self.directories[_join(parts)] = _DirectoryAttributes(
            parts, info.st_dev, info.st_ino, member.mode & 0o7777, member.uid, member.gid, _mtime_ns(member)
        )

    def _write_file(self, tar, member, parts, parent_fd):
        name = parts[-1]
        if self.stats.file_bytes + member.size > self.max_bytes:
            raise ArchiveLimitError(
                self.archive,
                member.name,
                f"file content would exceed the limit of {self.max_bytes} bytes ({member.size} bytes in this member); "
                "pass a larger max_bytes (--max-bytes) if the archive is trusted",
            )
        self._remove_entry(parent_fd, name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=parent_fd)
        try:
            self._copy_content(tar, member, fd)
            if self.preserve_owners:
                os.fchown(fd, member.uid, member.gid)
            # After fchown, which clears the setuid and setgid bits.
            os.fchmod(fd, member.mode & 0o7777)
            mtime_ns = _mtime_ns(member)
            if mtime_ns is not None:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
        except BaseException:
            os.close(fd)
            # Leave no partial file behind, and report the original error.
            try:
                os.unlink(name, dir_fd=parent_fd)
            except OSError:
                pass
            raise
        os.close(fd)
        self.stats.files += 1
        self.stats.file_bytes += member.size
        if member.mode & (stat.S_ISUID | stat.S_ISGID):
            self.stats.setid_files += 1

    def _copy_content(self, tar, member, fd):
        source = tar.extractfile(member)
        remaining = member.size
        while remaining > 0:
            chunk = source.read(min(remaining, _COPY_CHUNK))
            if not chunk:
                raise _CorruptArchive(f"member {member.name!r} ends after {member.size - remaining} of {member.size} bytes")
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            remaining -= len(chunk)

    def _make_hard_link(self, member, parts, parent_fd):
        if member.linkname.startswith("/"):
            raise UnsafeMemberError(
                self.archive, member.name, f"hard link target {member.linkname!r} is absolute; archive link targets must be relative"
            )
        target_parts, _ = _split_name(self.archive, member.name, member.linkname, what="hard link target")
        if not target_parts:
            raise UnsafeMemberError(self.archive, member.name, f"hard link target {member.linkname!r} names the root directory")
        if _join(target_parts) in self.skipped:
            log.debug("%s: skipping hard link %r to skipped member %r", self.archive, member.name, member.linkname)
            self.skipped.add(_join(parts))
            return
        if target_parts == parts:
            return

        target_parent = self._open_parent(member.name, target_parts[:-1], create=False)
        try:
            try:
                info = os.stat(target_parts[-1], dir_fd=target_parent, follow_symlinks=False)
            except FileNotFoundError:
                raise ArchiveError(self.archive, member.name, f"hard link target {member.linkname!r} does not exist") from None
            if stat.S_ISDIR(info.st_mode):
                raise UnsafeMemberError(self.archive, member.name, f"hard link target {member.linkname!r} is a directory")
            self._remove_entry(parent_fd, parts[-1])
            # follow_symlinks=False: linkat(2) without AT_SYMLINK_FOLLOW links a symlink itself.
            os.link(target_parts[-1], parts[-1], src_dir_fd=target_parent, dst_dir_fd=parent_fd, follow_symlinks=False)
        finally:
            os.close(target_parent)
        self.stats.hardlinks += 1

    def _make_special(self, member, parent_fd, name):
        if member.isfifo():
            kind, device = stat.S_IFIFO, 0
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            device = os.makedev(member.devmajor, member.devminor)
        mode = member.mode & 0o7777
        self._remove_entry(parent_fd, name)
        os.mknod(name, kind | mode, device, dir_fd=parent_fd)
        if self.preserve_owners:
            os.chown(name, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)

        # mknod applied the umask and chown cleared setuid/setgid bits. Linux has
        # no lchmod, so the mode is set through an O_PATH descriptor of the node,
        # which cannot be a symlink planted since mknod because of O_NOFOLLOW.
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
                os.chmod(f"/proc/self/fd/{fd}", mode)
        finally:
            os.close(fd)
        self._set_times(member, parent_fd, name)
        if member.isfifo():
            self.stats.fifos += 1
        else:
            self.stats.devices += 1

    def _skip_special(self, member, parts):
        kind = "FIFO" if member.isfifo() else "device node"
        log.debug("%s: skipping %s %r (allow_devices is off)", self.archive, kind, member.name)
        if member.isfifo():
            self.stats.skipped_fifos += 1
        else:
            self.stats.skipped_devices += 1
        self.skipped.add(_join(parts))

    def _set_link_attributes(self, member, parent_fd, name):
        if self.preserve_owners:
            os.chown(name, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
        self._set_times(member, parent_fd, name)

    def _set_times(self, member, parent_fd, name):
        mtime_ns = _mtime_ns(member)
        if mtime_ns is not None:
            os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=parent_fd, follow_symlinks=False)

    # --- Whiteouts -----------------------------------------------------------------

    def _apply_whiteout(self, member, parts):
        marker = parts[-1]
        if marker == _OPAQUE_WHITEOUT:
            self._apply_opaque_whiteout(member, parts[:-1])
            return
        if marker.startswith(_AUFS_META_PREFIX):
            log.debug("%s: skipping AUFS metadata member %r", self.archive, member.name)
            return

        hidden = marker[len(_WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise UnsafeMemberError(self.archive, member.name, f"whiteout {marker!r} does not name an entry")
        hidden_path = _join(parts[:-1] + (hidden,))
        self.stats.whiteouts += 1
        if hidden_path in self.created:
            # A whiteout hides entries of older layers only, never of its own.
            return
        try:
            parent_fd = self._open_parent(member.name, parts[:-1], create=False)
        except ArchiveError:
            # The directory does not exist, so there is nothing to hide.
            return
        try:
            self._remove_entry(parent_fd, hidden)
        except OSError as error:
            raise ArchiveError(self.archive, member.name, f"cannot remove {hidden_path}: {_describe(error)}") from None
        finally:
            os.close(parent_fd)

    def _apply_opaque_whiteout(self, member, directory_parts):
        self.stats.whiteouts += 1
        parent_fd = self._open_parent(member.name, directory_parts, create=True)
        try:
            self._remove_older_entries(parent_fd, directory_parts)
        except OSError as error:
            raise ArchiveError(
                self.archive, member.name, f"cannot clear directory {_join(directory_parts)}: {_describe(error)}"
            ) from None
        finally:
            os.close(parent_fd)
        self._mark_created(directory_parts)

    def _remove_older_entries(self, directory_fd, directory_parts):
        """Remove the entries below a directory that this extraction did not create.

        A directory that contains entries of this extraction stays, and its older
        content is removed recursively.
        """
        listing_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=directory_fd)
        try:
            names = os.listdir(listing_fd)
            for name in names:
                path = _join(directory_parts + (name,))
                if path not in self.created and path not in self.created_ancestors:
                    self._remove_entry(listing_fd, name)
                    continue
                info = os.stat(name, dir_fd=listing_fd, follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    child_fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=listing_fd)
                    try:
                        self._remove_older_entries(child_fd, directory_parts + (name,))
                    finally:
                        os.close(child_fd)
        finally:
            os.close(listing_fd)

    # --- Directory attributes ----------------------------------------------------

    def _apply_directory_attributes(self):
        """Set mode, owner and mtime of each directory member, deepest first."""
        for attributes in sorted(self.directories.values(), key=lambda item: len(item.parts), reverse=True):
            path = _join(attributes.parts)
            try:
                fd = syscalls.openat2(
                    self.root_fd, path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, resolve=_RESOLVE
                )
            except SyscallError as error:
                # A later member replaced the directory, so its attributes no longer apply.
                log.debug("%s: not setting attributes of %s: %s", self.archive, path, error)
                continue
            try:
                info = os.fstat(fd)
                if (info.st_dev, info.st_ino) != (attributes.device, attributes.inode):
                    log.debug("%s: %s was replaced after extraction; attributes not applied", self.archive, path)
                    continue
                if self.preserve_owners:
                    os.fchown(fd, attributes.uid, attributes.gid)
                os.fchmod(fd, attributes.mode)
                if attributes.mtime_ns is not None:
                    os.utime(fd, ns=(attributes.mtime_ns, attributes.mtime_ns))
            except OSError as error:
                raise ArchiveError(self.archive, "", f"cannot set the attributes of directory {path}: {_describe(error)}") from None
            finally:
                os.close(fd)


def _mtime_ns(member):
    """Return the member's mtime in nanoseconds, or None when it does not fit a 64-bit timespec."""
    try:
        nanoseconds = int(member.mtime * 1_000_000_000)
    except (TypeError, ValueError, OverflowError):
        return None
    if not -(1 << 63) <= nanoseconds < (1 << 63):
        return None
    return nanoseconds


# uid_t and gid_t are 32 bits, and (uid_t)-1 means "unchanged" to chown(2).
_MAX_ID = (1 << 32) - 2


def _check_owner(archive, member):
    for kind, value in (("uid", member.uid), ("gid", member.gid)):
        if not 0 <= value <= _MAX_ID:
            raise ArchiveError(archive, member.name, f"invalid {kind} {value}: it must be between 0 and {_MAX_ID}")


def _require_zstandard(archive):
    try:
        import zstandard  # noqa: F401
    except ImportError:
        raise ArchiveError(
            archive,
            "",
            "the archive is zstd-compressed and the Python package zstandard is not installed; "
            "install it (pip install zstandard) or run with the project's .venv/bin/python",
        ) from None
