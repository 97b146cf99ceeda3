"""Checksums of files, read in blocks (model files can be large)."""
import hashlib


def file_hexdigest(path, algorithm="sha256"):
    """The hex digest of file `path` with hashlib's `algorithm`."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
