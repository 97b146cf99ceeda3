"""Reading feature matrices through a feats.scp, with one-line errors.

kaldiio reports a moved offset or a truncated ark as a raw UnicodeDecodeError, ValueError or
AssertionError from deep inside its parser; here every failure becomes a SerError naming the
scp file, its line and the ark: `data/all_spec/feats.scp:12: cannot read features of 'u1' from
feats/all_spec/feats.1.ark:4711 (...)`.
"""
import os

from ser.data.kvfile import table_lines
from ser.errors import SerError


class ScpReader:
    """utt -> matrix of a feats.scp (read lazily, like kaldiio.load_scp, but checked)."""

    def __init__(self, scp):
        self.scp = scp
        self.entries = {}  # utt -> (rxspecifier, line number)
        for lineno, line in table_lines(scp):
            line = line.strip()
            if not line:
                continue
            parts = line.split(None, 1)
            if len(parts) != 2:
                raise SerError(f"{scp}:{lineno}: expected '<utt> <ark>:<offset>', got '{line}'")
            self.entries[parts[0]] = (parts[1], lineno)

    def __contains__(self, utt):
        return utt in self.entries

    def __len__(self):
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def where(self, utt):
        """'<scp>:<line>' of an utterance."""
        return f"{self.scp}:{self.entries[utt][1]}"

    def __getitem__(self, utt):
        import kaldiio

        spec, _ = self.entries[utt]
        try:
            return kaldiio.load_mat(spec)
        except Exception as e:  # kaldiio raises many kinds for a bad offset or a truncated ark
            reason = " ".join(str(e).split())[:200] or type(e).__name__
            ark = spec.rsplit(":", 1)[0] if ":" in spec else spec
            hint = "" if os.path.exists(ark) else " (no such file)"
            raise SerError(f"{self.where(utt)}: cannot read features of '{utt}' from {spec}{hint}: "
                           f"{type(e).__name__}: {reason}") from None
