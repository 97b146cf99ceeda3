"""Atomic file writes: a reader sees either the old file or the complete new one, never a part.

A killed stage must not leave a half-written `feats.scp` (or checkpoint) that a later run would
take as complete, so every output is written to a temporary file in the same directory and
renamed into place with os.replace, which is atomic on POSIX file systems.
"""
import contextlib
import os
import shutil
import tempfile

# mkstemp creates files readable by the owner only; outputs get the usual umask permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Open a temporary sibling of `path` for writing; on success rename it to `path`."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_save_png(path, fig, **savefig_kwargs):
    """Render a matplotlib Figure to `path` as PNG atomically (no half-written image on a kill)."""
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", **savefig_kwargs)


def atomic_copy(src, path):
    """Copy the file `src` to `path` atomically."""
    with open(src, "rb") as f, atomic_open(path, "wb") as out:
        shutil.copyfileobj(f, out)


def atomic_write_text(path, text):
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _replace_dir(built, out):
    """Swap the finished directory `built` in as `out` (an older `out` is moved aside, then removed),
    so a reader never finds `out` half-built; `built` must be on the same file system."""
    old = out + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(out):
        os.replace(out, old)
    os.replace(built, out)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def building_dir(out):
    """Yield the empty hidden sibling directory `.<name>.tmp` of `out` to fill (what a killed earlier
    attempt left there is removed first); when the block ends without an error it replaces `out`
    (_replace_dir), else it is removed, so `out` is never seen half-written."""
    out = os.path.normpath(out)
    tmp = os.path.join(os.path.dirname(out), "." + os.path.basename(out) + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
