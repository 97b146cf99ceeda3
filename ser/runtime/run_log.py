"""Logging of a training run: train.log in the output dir plus stderr on rank 0, nothing elsewhere.

Used by the classifier trainer and the diffusion trainer, each with its own logger name.
"""
import logging
import os
import sys


class LogToOutdir:
    """Attach train.log and stderr handlers to logger `name` for the duration of a run."""

    def __init__(self, outdir, name):
        self.logger = logging.getLogger(name)
        self.handlers = [logging.FileHandler(os.path.join(outdir, "train.log"), encoding="utf-8"),
                         logging.StreamHandler(sys.stderr)]

    def __enter__(self):
        fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        for h in self.handlers:
            h.setFormatter(fmt)
            self.logger.addHandler(h)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        return self.logger

    def __exit__(self, *exc):
        for h in self.handlers:
            self.logger.removeHandler(h)
            h.close()


class QuietLog:
    """The logger of ranks other than 0 (data-parallel training): messages go nowhere."""

    def __init__(self, name):
        self.name = name + ".quiet"

    def __enter__(self):
        logger = logging.getLogger(self.name)
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        return logger

    def __exit__(self, *exc):
        pass
