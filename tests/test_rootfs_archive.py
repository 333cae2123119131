"""navio_runtime.rootfs_archive, scripts/build-rootfs and the alpine and ubuntu bundles.

Archives are built in temporary directories with tarfile. The format tests
pack a small rootfs from bundles/busybox/rootfs, extract it and run a real
container from the result. The hostile-archive tests each place a canary
outside the rootfs (a directory with a file, standing in for the host's /etc)
and check that extraction leaves it untouched.
"""

import copy
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import uuid

import pytest

from navio_runtime.errors import ArchiveError, ArchiveLimitError, UnsafeMemberError
from navio_runtime.rootfs_archive import detect_compression, extract_rootfs
from navio_runtime.spec.validate import find_problems

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSYBOX_ROOTFS = os.path.join(REPO, "bundles", "busybox", "rootfs")
BUILD_ROOTFS = os.path.join(REPO, "scripts", "build-rootfs")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="extraction keeps owners and creates devices, which needs root")

FORMATS = ["tar", "tar.gz", "tar.xz", "tar.zst", "tar.bz2"]
EXPECTED_COMPRESSION = {"tar": "none", "tar.gz": "gzip", "tar.xz": "xz", "tar.zst": "zstd", "tar.bz2": "bzip2"}

CANARY_TEXT = b"host canary\n"


# ---------------------------------------------------------------------------
# Archive builders
# ---------------------------------------------------------------------------


def _compress(data, fmt):
    if fmt == "tar":
        return data
    if fmt == "tar.gz":
        import gzip

        return gzip.compress(data)
    if fmt == "tar.xz":
        import lzma

        return lzma.compress(data)
    if fmt == "tar.bz2":
        import bz2

        return bz2.compress(data)
    if fmt == "tar.zst":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(fmt)


def _entry(name, kind=tarfile.REGTYPE, data=b"", mode=None, linkname="", uid=0, gid=0, mtime=1_600_000_000,
           devmajor=0, devminor=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    if mode is not None:
        info.mode = mode
    elif kind == tarfile.DIRTYPE:
        info.mode = 0o755
    else:
        info.mode = 0o644
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    info.linkname = linkname
    info.devmajor, info.devminor = devmajor, devminor
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def file_entry(name, data=b"data\n", **attrs):
    return _entry(name, tarfile.REGTYPE, data=data, **attrs)


def dir_entry(name, **attrs):
    return _entry(name, tarfile.DIRTYPE, **attrs)


def symlink_entry(name, target):
    return _entry(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink_entry(name, target):
    return _entry(name, tarfile.LNKTYPE, linkname=target)


def tar_bytes(entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buffer.getvalue()


def write_archive(path, entries, fmt="tar"):
    path.write_bytes(_compress(tar_bytes(entries), fmt))
    return path


def _ensure_busybox_rootfs():
    if not os.path.exists(os.path.join(BUSYBOX_ROOTFS, "bin", "busybox")):
        subprocess.run([os.path.join(REPO, "scripts", "build-busybox-rootfs")], check=True, stdout=subprocess.DEVNULL)


def _busybox_tar():
    """Return a tar of bin/, etc/passwd, etc/group and the empty top-level directories of the busybox rootfs.

    Other files in the shared rootfs may come and go while other tests run, so
    only these entries are packed.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(BUSYBOX_ROOTFS, arcname=".", recursive=False)
        for directory in ("bin", "dev", "etc", "proc", "root", "sys", "tmp"):
            tar.add(os.path.join(BUSYBOX_ROOTFS, directory), arcname=directory, recursive=False)
        for name in sorted(os.listdir(os.path.join(BUSYBOX_ROOTFS, "bin"))):
            tar.add(os.path.join(BUSYBOX_ROOTFS, "bin", name), arcname=f"bin/{name}", recursive=False)
        for name in ("passwd", "group"):
            tar.add(os.path.join(BUSYBOX_ROOTFS, "etc", name), arcname=f"etc/{name}", recursive=False)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def busybox_archives(tmp_path_factory):
    """Map each format to a small busybox rootfs archive in that format."""
    _ensure_busybox_rootfs()
    directory = tmp_path_factory.mktemp("busybox-archives")
    data = _busybox_tar()
    archives = {}
    for fmt in FORMATS:
        path = directory / f"busybox.{fmt}"
        path.write_bytes(_compress(data, fmt))
        archives[fmt] = path
    return archives


@pytest.fixture
def host_dir(tmp_path):
    """A directory outside the rootfs with a file `passwd`, standing in for the host's /etc."""
    path = tmp_path / "host-etc"
    path.mkdir()
    (path / "passwd").write_bytes(CANARY_TEXT)
    return path


def assert_host_untouched(host_dir):
    assert sorted(os.listdir(host_dir)) == ["passwd"]
    assert (host_dir / "passwd").read_bytes() == CANARY_TEXT
    assert os.stat(host_dir / "passwd").st_nlink == 1


def run_echo_ok(runtime, bundle_dir, config, rootfs):
    """Run `sh -c 'echo ok'` with `config` and `rootfs`, and return the CompletedProcess."""
    config = copy.deepcopy(config)
    config["process"]["args"] = ["sh", "-c", "echo ok"]
    config["process"]["terminal"] = False
    config["root"]["path"] = str(rootfs)
    bundle_dir.mkdir()
    (bundle_dir / "config.json").write_text(json.dumps(config))
    return runtime("run", "--bundle", str(bundle_dir), f"archive-{uuid.uuid4().hex[:10]}")


def busybox_config():
    with open(os.path.join(REPO, "bundles", "busybox", "config.json")) as config_file:
        return json.load(config_file)


# ---------------------------------------------------------------------------
# Formats: extract a real rootfs and run a container from it
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_extracts_busybox(fmt, busybox_archives, tmp_path):
    rootfs = tmp_path / "rootfs"

    stats = extract_rootfs(busybox_archives[fmt], rootfs)

    assert stats.compression == EXPECTED_COMPRESSION[fmt]
    with open(os.path.join(BUSYBOX_ROOTFS, "bin", "busybox"), "rb") as original:
        assert (rootfs / "bin" / "busybox").read_bytes() == original.read()
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    assert stat.S_IMODE(os.stat(rootfs / "tmp").st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(rootfs / "bin" / "busybox").st_mode) == 0o755


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_runs_container(fmt, busybox_archives, runtime, tmp_path):
    rootfs = tmp_path / "rootfs"
    extract_rootfs(busybox_archives[fmt], rootfs)

    result = run_echo_ok(runtime, tmp_path / "bundle", busybox_config(), rootfs)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_compression_from_content_not_name(tmp_path):
    gzip_named_tar = write_archive(tmp_path / "gzip.tar", [file_entry("a")], fmt="tar.gz")
    plain_named_zst = write_archive(tmp_path / "plain.tar.zst", [file_entry("a")], fmt="tar")

    gzip_stats = extract_rootfs(gzip_named_tar, tmp_path / "one")
    plain_stats = extract_rootfs(plain_named_zst, tmp_path / "two")

    assert gzip_stats.compression == "gzip"
    assert plain_stats.compression == "none"
    assert detect_compression(gzip_named_tar) == "gzip"
    assert (tmp_path / "two" / "a").read_bytes() == b"data\n"


# ---------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------


def test_owner_mode_mtime_kept(tmp_path):
    archive = write_archive(tmp_path / "a.tar", [
        file_entry("usr/bin/su", mode=0o4755, uid=0, gid=0),
        file_entry("usr/bin/wall", mode=0o2755, uid=0, gid=5),
        file_entry("home/user/notes", mode=0o640, uid=1234, gid=5678, mtime=1_000_000_000),
        symlink_entry("home/user/link", "notes"),
    ])
    rootfs = tmp_path / "rootfs"

    stats = extract_rootfs(archive, rootfs)

    su = os.stat(rootfs / "usr/bin/su")
    wall = os.stat(rootfs / "usr/bin/wall")
    notes = os.stat(rootfs / "home/user/notes")
    assert stat.S_IMODE(su.st_mode) == 0o4755
    assert stat.S_IMODE(wall.st_mode) == 0o2755
    assert wall.st_gid == 5
    assert stat.S_IMODE(notes.st_mode) == 0o640
    assert (notes.st_uid, notes.st_gid) == (1234, 5678)
    assert notes.st_mtime == 1_000_000_000
    assert stats.setid_files == 2


def test_owner_from_number_not_name(tmp_path):
    info, data = file_entry("f", uid=4321, gid=8765)
    info.uname, info.gname = "root", "root"
    archive = write_archive(tmp_path / "a.tar", [(info, data)])

    extract_rootfs(archive, tmp_path / "rootfs")

    owner = os.stat(tmp_path / "rootfs" / "f")
    assert (owner.st_uid, owner.st_gid) == (4321, 8765)


def test_readonly_directory_filled(tmp_path):
    archive = write_archive(tmp_path / "a.tar", [
        dir_entry("ro", mode=0o555, mtime=1_200_000_000),
        dir_entry("ro/sub", mode=0o500, uid=1000, gid=1000),
        file_entry("ro/sub/file", data=b"inside\n", mode=0o444),
    ])
    rootfs = tmp_path / "rootfs"

    extract_rootfs(archive, rootfs, preserve_owners=True)

    assert (rootfs / "ro/sub/file").read_bytes() == b"inside\n"
    assert stat.S_IMODE(os.stat(rootfs / "ro").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(rootfs / "ro/sub").st_mode) == 0o500
    assert os.stat(rootfs / "ro/sub").st_uid == 1000
    # Writing ro/sub changed the mtime of ro; the archive's value is applied last.
    assert os.stat(rootfs / "ro").st_mtime == 1_200_000_000


def test_implicit_parents_are_0755(tmp_path):
    archive = write_archive(tmp_path / "a.tar", [file_entry("a/b/c")])
    old_umask = os.umask(0o077)
    try:
        extract_rootfs(archive, tmp_path / "rootfs")
    finally:
        os.umask(old_umask)

    assert stat.S_IMODE(os.stat(tmp_path / "rootfs" / "a").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "rootfs" / "a" / "b").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "rootfs").st_mode) == 0o755


def test_root_entry_sets_rootfs_mode(tmp_path):
    archive = write_archive(tmp_path / "a.tar", [dir_entry("./", mode=0o711), file_entry("./x")])

    extract_rootfs(archive, tmp_path / "rootfs")

    assert stat.S_IMODE(os.stat(tmp_path / "rootfs").st_mode) == 0o711


def test_hardlink_inside_shares_inode(tmp_path):
    archive = write_archive(tmp_path / "a.tar", [file_entry("bin/a"), hardlink_entry("bin/b", "./bin/a")])
    rootfs = tmp_path / "rootfs"

    stats = extract_rootfs(archive, rootfs)

    assert os.stat(rootfs / "bin/a").st_ino == os.stat(rootfs / "bin/b").st_ino
    assert stats.hardlinks == 1


def test_later_member_replaces_earlier(tmp_path):
    archive = write_archive(tmp_path / "a.tar", [
        file_entry("x", data=b"first\n"),
        file_entry("x", data=b"second\n"),
        dir_entry("d"),
        file_entry("d/inner"),
        symlink_entry("d", "x"),
    ])
    rootfs = tmp_path / "rootfs"

    extract_rootfs(archive, rootfs)

    assert (rootfs / "x").read_bytes() == b"second\n"
    assert os.readlink(rootfs / "d") == "x"


# ---------------------------------------------------------------------------
# Hostile member names
# ---------------------------------------------------------------------------


def test_absolute_name_rerooted(tmp_path, host_dir):
    member_name = str(host_dir / "passwd")
    archive = write_archive(tmp_path / "a.tar", [file_entry(member_name, data=b"evil\n")])
    rootfs = tmp_path / "rootfs"

    stats = extract_rootfs(archive, rootfs)

    assert_host_untouched(host_dir)
    assert (rootfs / member_name.lstrip("/")).read_bytes() == b"evil\n"
    assert stats.rerooted_names == 1


@pytest.mark.parametrize("name", ["../escaped", "../../escaped", "a/../../escaped", "./a/b/../../../escaped"])
def test_climbing_name_rejected(tmp_path, name):
    archive = write_archive(tmp_path / "a.tar", [file_entry(name, data=b"evil\n")])
    rootfs = tmp_path / "work" / "rootfs"
    rootfs.parent.mkdir()

    with pytest.raises(UnsafeMemberError) as caught:
        extract_rootfs(archive, rootfs)

    assert caught.value.member == name
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "work" / "escaped").exists()


def test_symlink_parent_absolute_outside(tmp_path, host_dir):
    archive = write_archive(tmp_path / "a.tar", [
        symlink_entry("etc", str(host_dir)),
        file_entry("etc/passwd", data=b"evil\n"),
    ])

    with pytest.raises(ArchiveError) as caught:
        extract_rootfs(archive, tmp_path / "rootfs")

    assert caught.value.member == "etc/passwd"
    assert_host_untouched(host_dir)


def test_symlink_parent_to_itself(tmp_path, host_dir):
    # "etc -> /etc" resolves to the link itself inside the root: a loop.
    archive = write_archive(tmp_path / "a.tar", [
        symlink_entry("etc", "/etc"),
        file_entry("etc/passwd", data=b"evil\n"),
    ])

    with pytest.raises(UnsafeMemberError, match="ELOOP"):
        extract_rootfs(archive, tmp_path / "rootfs")

    assert_host_untouched(host_dir)


def test_symlink_parent_relative_climb(tmp_path, host_dir):
    climb = "../" * 20 + str(host_dir).lstrip("/")
    archive = write_archive(tmp_path / "a.tar", [
        symlink_entry("lib", climb),
        file_entry("lib/passwd", data=b"evil\n"),
    ])

    with pytest.raises(ArchiveError):
        extract_rootfs(archive, tmp_path / "rootfs")

    assert_host_untouched(host_dir)


def test_symlink_parent_resolved_in_root(tmp_path, host_dir):
    # The same path exists inside the rootfs, so the write lands there, as it
    # would inside the container.
    inside = str(host_dir).lstrip("/")
    archive = write_archive(tmp_path / "a.tar", [
        dir_entry(inside),
        symlink_entry("etc", str(host_dir)),
        file_entry("etc/passwd", data=b"inside\n"),
    ])
    rootfs = tmp_path / "rootfs"

    extract_rootfs(archive, rootfs)

    assert_host_untouched(host_dir)
    assert (rootfs / inside / "passwd").read_bytes() == b"inside\n"


def test_symlink_last_component_replaced(tmp_path, host_dir):
    archive = write_archive(tmp_path / "a.tar", [
        symlink_entry("passwd", str(host_dir / "passwd")),
        file_entry("passwd", data=b"evil\n"),
    ])
    rootfs = tmp_path / "rootfs"

    extract_rootfs(archive, rootfs)

    assert_host_untouched(host_dir)
    assert not os.path.islink(rootfs / "passwd")
    assert (rootfs / "passwd").read_bytes() == b"evil\n"


def test_symlink_created_as_is(tmp_path, host_dir):
    archive = write_archive(tmp_path / "a.tar", [symlink_entry("etc", str(host_dir))])
    rootfs = tmp_path / "rootfs"

    stats = extract_rootfs(archive, rootfs)

    assert os.readlink(rootfs / "etc") == str(host_dir)
    assert stats.symlinks == 1


# ---------------------------------------------------------------------------
# Hostile hard links
# ---------------------------------------------------------------------------


def test_hardlink_absolute_rejected(tmp_path, host_dir):
    archive = write_archive(tmp_path / "a.tar", [hardlink_entry("stolen", str(host_dir / "passwd"))])
    rootfs = tmp_path / "rootfs"

    with pytest.raises(UnsafeMemberError, match="absolute"):
        extract_rootfs(archive, rootfs)

    assert_host_untouched(host_dir)
    assert not os.path.lexists(rootfs / "stolen")


def test_hardlink_climbing_rejected(tmp_path, host_dir):
    climb = "../" * 20 + str(host_dir / "passwd").lstrip("/")
    archive = write_archive(tmp_path / "a.tar", [hardlink_entry("stolen", climb)])
    rootfs = tmp_path / "rootfs"

    with pytest.raises(UnsafeMemberError, match=r"\.\."):
        extract_rootfs(archive, rootfs)

    assert_host_untouched(host_dir)
    assert not os.path.lexists(rootfs / "stolen")


def test_hardlink_through_symlink(tmp_path, host_dir):
    archive = write_archive(tmp_path / "a.tar", [
        symlink_entry("hostetc", str(host_dir)),
        hardlink_entry("stolen", "hostetc/passwd"),
    ])
    rootfs = tmp_path / "rootfs"

    with pytest.raises(ArchiveError):
        extract_rootfs(archive, rootfs)

    assert_host_untouched(host_dir)
    assert not os.path.lexists(rootfs / "stolen")


def test_hardlink_to_outside_symlink(tmp_path, host_dir):
    # linkat(2) links the symlink itself, so the host file gets no new link.
    archive = write_archive(tmp_path / "a.tar", [
        symlink_entry("pointer", str(host_dir / "passwd")),
        hardlink_entry("stolen", "pointer"),
    ])
    rootfs = tmp_path / "rootfs"

    extract_rootfs(archive, rootfs)

    assert_host_untouched(host_dir)
    assert os.path.islink(rootfs / "stolen")


# ---------------------------------------------------------------------------
# Device nodes and FIFOs
# ---------------------------------------------------------------------------


def _special_entries():
    return [
        _entry("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        _entry("dev/loop9", tarfile.BLKTYPE, mode=0o660, gid=6, devmajor=7, devminor=9),
        _entry("run/fifo", tarfile.FIFOTYPE, mode=0o620),
        hardlink_entry("dev/null-link", "dev/null"),
    ]


def test_devices_skipped_by_default(tmp_path):
    archive = write_archive(tmp_path / "a.tar", _special_entries())
    rootfs = tmp_path / "rootfs"

    stats = extract_rootfs(archive, rootfs)

    assert stats.skipped_devices == 2
    assert stats.skipped_fifos == 1
    assert not os.path.lexists(rootfs / "dev/null")
    assert not os.path.lexists(rootfs / "dev/loop9")
    assert not os.path.lexists(rootfs / "run/fifo")
    assert not os.path.lexists(rootfs / "dev/null-link")


def test_devices_created_when_allowed(tmp_path):
    archive = write_archive(tmp_path / "a.tar", _special_entries())
    rootfs = tmp_path / "rootfs"
    old_umask = os.umask(0o022)
    try:
        stats = extract_rootfs(archive, rootfs, allow_devices=True)
    finally:
        os.umask(old_umask)

    null = os.lstat(rootfs / "dev/null")
    loop = os.lstat(rootfs / "dev/loop9")
    fifo = os.lstat(rootfs / "run/fifo")
    assert stat.S_ISCHR(null.st_mode)
    assert null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISBLK(loop.st_mode)
    assert loop.st_rdev == os.makedev(7, 9)
    assert loop.st_gid == 6
    assert stat.S_ISFIFO(fifo.st_mode)
    assert stat.S_IMODE(fifo.st_mode) == 0o620
    assert (stats.devices, stats.fifos) == (2, 1)


# ---------------------------------------------------------------------------
# OCI whiteouts
# ---------------------------------------------------------------------------


def _lower_layer(tmp_path):
    rootfs = tmp_path / "rootfs"
    lower = write_archive(tmp_path / "lower.tar", [
        file_entry("a/old"),
        file_entry("a/sub/lower-file"),
        file_entry("b/file"),
        file_entry("b/other"),
    ])
    extract_rootfs(lower, rootfs)
    return rootfs


def test_whiteout_removes_lower_entry(tmp_path):
    rootfs = _lower_layer(tmp_path)
    upper = write_archive(tmp_path / "upper.tar", [file_entry("b/.wh.file", data=b"")])

    stats = extract_rootfs(upper, rootfs)

    assert not os.path.lexists(rootfs / "b/file")
    assert not os.path.lexists(rootfs / "b/.wh.file")
    assert (rootfs / "b/other").exists()
    assert stats.whiteouts == 1


def test_opaque_whiteout_keeps_own_layer(tmp_path):
    rootfs = _lower_layer(tmp_path)
    upper = write_archive(tmp_path / "upper.tar", [
        dir_entry("a"),
        file_entry("a/sub/new"),
        file_entry("a/.wh..wh..opq", data=b""),
    ])

    extract_rootfs(upper, rootfs)

    assert sorted(os.listdir(rootfs / "a")) == ["sub"]
    assert os.listdir(rootfs / "a/sub") == ["new"]
    assert (rootfs / "b/file").exists()


def test_whiteouts_kept_when_disabled(tmp_path):
    rootfs = _lower_layer(tmp_path)
    upper = write_archive(tmp_path / "upper.tar", [file_entry("b/.wh.file", data=b"")])

    extract_rootfs(upper, rootfs, apply_whiteouts=False)

    assert (rootfs / "b/.wh.file").exists()
    assert (rootfs / "b/file").exists()


def test_whiteout_of_parent_rejected(tmp_path):
    rootfs = _lower_layer(tmp_path)
    upper = write_archive(tmp_path / "upper.tar", [file_entry("b/.wh..", data=b"")])

    with pytest.raises(UnsafeMemberError):
        extract_rootfs(upper, rootfs)

    assert (rootfs / "b/file").exists()


# ---------------------------------------------------------------------------
# Tar bombs
# ---------------------------------------------------------------------------


def test_member_limit(tmp_path):
    archive = write_archive(tmp_path / "a.tar", [file_entry(f"f{index}") for index in range(10)])

    with pytest.raises(ArchiveLimitError, match="more than 5 members"):
        extract_rootfs(archive, tmp_path / "rootfs", max_members=5)


def test_byte_limit_on_member(tmp_path):
    archive = write_archive(tmp_path / "a.tar", [file_entry("big", data=b"x" * 100_000)])

    with pytest.raises(ArchiveLimitError) as caught:
        extract_rootfs(archive, tmp_path / "rootfs", max_bytes=50_000)

    assert caught.value.member == "big"
    assert not (tmp_path / "rootfs" / "big").exists()


def test_byte_limit_on_compressed_bomb(tmp_path):
    # 64 MiB of zeros compress to about 64 KiB with gzip.
    archive = write_archive(tmp_path / "bomb.tar.gz", [file_entry("zeros", data=bytes(64 << 20))], fmt="tar.gz")

    with pytest.raises(ArchiveLimitError, match="limit of 1048576 bytes"):
        extract_rootfs(archive, tmp_path / "rootfs", max_bytes=1 << 20)

    assert os.path.getsize(archive) < (1 << 20)


# ---------------------------------------------------------------------------
# Truncated and corrupt archives
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_archive_names_member(fmt, tmp_path):
    # Larger than one bzip2 block (900 kB), so that half the file still decodes into "random".
    data = _compress(tar_bytes([file_entry("small"), file_entry("random", data=os.urandom(2_000_000))]), fmt)
    archive = tmp_path / f"cut.{fmt}"
    archive.write_bytes(data[: len(data) // 2])

    with pytest.raises(ArchiveError) as caught:
        extract_rootfs(archive, tmp_path / "rootfs")

    assert str(archive) in str(caught.value)
    assert "random" in str(caught.value)


def test_cut_at_member_boundary(tmp_path):
    data = tar_bytes([file_entry("one", data=b"x" * 512), file_entry("two", data=b"y" * 512)])
    archive = tmp_path / "cut.tar"
    # Header and data of "one": the end-of-archive blocks and "two" are missing.
    archive.write_bytes(data[:1024])

    with pytest.raises(ArchiveError, match="end-of-archive"):
        extract_rootfs(archive, tmp_path / "rootfs")


def test_corrupt_gzip_detected(tmp_path):
    data = bytearray(_compress(tar_bytes([file_entry("random", data=os.urandom(200_000))]), "tar.gz"))
    data[len(data) // 2] ^= 0xFF
    archive = tmp_path / "corrupt.tar.gz"
    archive.write_bytes(bytes(data))

    with pytest.raises(ArchiveError) as caught:
        extract_rootfs(archive, tmp_path / "rootfs")

    assert str(archive) in str(caught.value)


def test_not_a_tar_archive(tmp_path):
    archive = tmp_path / "text.tar"
    archive.write_bytes(b"this is not a tar archive\n" * 40)

    with pytest.raises(ArchiveError, match="not a tar archive"):
        extract_rootfs(archive, tmp_path / "rootfs")


# ---------------------------------------------------------------------------
# scripts/build-rootfs
# ---------------------------------------------------------------------------


def build_rootfs(*args):
    return subprocess.run([sys.executable, BUILD_ROOTFS, *map(str, args)], capture_output=True, text=True, timeout=120)


def leftover_temp_dirs(bundle):
    return [name for name in os.listdir(bundle) if name.startswith(".rootfs-new-")]


def test_script_builds_new_bundle(busybox_archives, tmp_path):
    bundle = tmp_path / "bundle"

    result = build_rootfs(busybox_archives["tar.zst"], bundle)

    assert result.returncode == 0, result.stderr
    assert (bundle / "rootfs" / "bin" / "busybox").exists()
    assert stat.S_IMODE(os.stat(bundle).st_mode) == 0o700
    assert leftover_temp_dirs(bundle) == []


def test_script_refuses_full_rootfs(busybox_archives, tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "rootfs" / "keep").write_text("old\n")

    result = build_rootfs(busybox_archives["tar"], bundle)

    assert result.returncode == 1
    assert "--replace" in result.stderr
    assert os.listdir(bundle / "rootfs") == ["keep"]


def test_script_replace_swaps(busybox_archives, tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "rootfs" / "old-marker").write_text("old\n")

    result = build_rootfs("--replace", busybox_archives["tar.gz"], bundle)

    assert result.returncode == 0, result.stderr
    assert not (bundle / "rootfs" / "old-marker").exists()
    assert (bundle / "rootfs" / "bin" / "busybox").exists()
    assert leftover_temp_dirs(bundle) == []


def test_script_replace_failure_keeps_old(busybox_archives, tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "rootfs" / "old-marker").write_text("old\n")
    data = busybox_archives["tar.xz"].read_bytes()
    truncated = tmp_path / "truncated.tar.xz"
    truncated.write_bytes(data[: len(data) // 2])

    result = build_rootfs("--replace", truncated, bundle)

    assert result.returncode == 1
    assert str(truncated) in result.stderr
    assert os.listdir(bundle / "rootfs") == ["old-marker"]
    assert leftover_temp_dirs(bundle) == []


def test_script_failure_leaves_no_rootfs(tmp_path, host_dir):
    bundle = tmp_path / "bundle"
    archive = write_archive(tmp_path / "a.tar", [file_entry("fine"), file_entry("../escaped")])

    result = build_rootfs(archive, bundle)

    assert result.returncode == 1
    assert "../escaped" in result.stderr
    assert not (bundle / "rootfs").exists()
    assert leftover_temp_dirs(bundle) == []


# ---------------------------------------------------------------------------
# The alpine and ubuntu bundles
# ---------------------------------------------------------------------------


def bundle_config(name):
    with open(os.path.join(REPO, "bundles", name, "config.json")) as config_file:
        return json.load(config_file)


@pytest.mark.parametrize("name", ["alpine", "ubuntu"])
def test_bundle_config_valid(name, tmp_path):
    bundle = tmp_path / name
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps(bundle_config(name)))

    problems = find_problems(bundle_config(name), str(bundle))

    assert problems == []


@pytest.mark.parametrize("name", ["alpine", "ubuntu"])
def test_bundle_passes_check(name, runtime, tmp_path):
    bundle = tmp_path / name
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps(bundle_config(name)))

    result = runtime("check", "-b", str(bundle))

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["alpine", "ubuntu"])
def test_bundle_config_runs(name, busybox_archives, runtime, tmp_path):
    # The busybox rootfs replaces the distribution image, which the tests
    # cannot download. The command is replaced because busybox has no bash.
    rootfs = tmp_path / "rootfs"
    extract_rootfs(busybox_archives["tar"], rootfs)

    result = run_echo_ok(runtime, tmp_path / "bundle", bundle_config(name), rootfs)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
