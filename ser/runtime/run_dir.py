"""The output directory of a training run, as both trainers (ser.training.trainer,
ser.diffusion.trainer) keep it: train.log, checkpoints/last.pt with the random states that make a
resumed run bit-identical, and `done`, written last.

Under torch.distributed every rank holds a RunDir; rank 0 alone writes (the others log nowhere),
and a checkpoint gathers every rank's random states (ser.runtime.checkpoint).
"""
import contextlib
import os

from ser.data.atomic import atomic_write_text
from ser.runtime import distributed as D
from ser.runtime.checkpoint import CHECKPOINT, restore_rng, resume_if_checkpoint, save_checkpoint
from ser.runtime.run_log import LogToOutdir, QuietLog

DONE = "done"


class RunDir:
    """`outdir` of a run logging to logger `logger`. `on_checkpoint(position)` is called after each
    checkpoint is on disk (tests raise from it, or exit, to simulate a killed job); `notes` are
    logged first."""

    def __init__(self, outdir, logger, on_checkpoint=None, notes=()):
        self.outdir, self.logger = outdir, logger
        self.world, self.rank = D.world_size(), D.rank()
        self.main = self.rank == 0
        self.on_checkpoint = on_checkpoint
        self.notes = list(notes)
        self.checkpoint = os.path.join(outdir, CHECKPOINT)

    def note_processes(self, global_batch, extra=""):
        """Under torch.distributed, add a note on the processes and their share of the global batch."""
        if self.world > 1:
            self.notes.append(f"distributed: {self.world} processes ({D.dist.get_backend()}), "
                              f"{global_batch // self.world} segments per process and step "
                              f"(global batch {global_batch}){extra}")

    @contextlib.contextmanager
    def log(self):
        """The run's logger while the run lasts: train.log and stderr on rank 0 (which also
        creates outdir/checkpoints), nowhere on the other ranks; the notes are logged first."""
        if self.main:
            os.makedirs(os.path.dirname(self.checkpoint), exist_ok=True)
        with LogToOutdir(self.outdir, self.logger) if self.main else QuietLog(self.logger) as log:
            for note in self.notes:
                log.info(note)
            yield log

    def resume(self, load_state_dict, log, where):
        """Resume from checkpoints/last.pt if rank 0 finds it (ser.runtime.checkpoint.resume_if_checkpoint)."""
        return resume_if_checkpoint(self.checkpoint, load_state_dict, log, where)

    def add_rank_states(self, state):
        """Checkpoint `state` (holding "rng", this rank's random states) with "rng_ranks", every
        rank's, under torch.distributed: a collective."""
        if self.world > 1:
            state["rng_ranks"] = D.all_gather_object(state["rng"])
        return state

    def restore_rng(self, state, generator, position, shared):
        """Restore the random states of checkpoint `state` and the shared `generator`. Returns None,
        or when the number of processes changed a note: the `shared` streams continue, the other
        ranks' dropout streams are re-seeded from `position`."""
        writers = restore_rng(state, generator, self.world, self.rank, position)
        if writers is None:
            return None
        return (f"checkpoint written by {writers} process(es), resumed with {self.world}: {shared} "
                f"continue, dropout streams are re-seeded (not bit-identical to an uninterrupted run)")

    def save_checkpoint(self, state):
        """Write checkpoints/last.pt (rank 0; `state` comes from the collective add_rank_states)."""
        if self.main:
            save_checkpoint(self.checkpoint, state)

    def checkpoint_written(self, position):
        """The on_checkpoint hook, once the checkpoint is on disk for every rank."""
        if self.on_checkpoint is not None:
            D.barrier()   # the checkpoint is on disk before any rank leaves
            self.on_checkpoint(position)

    def finish(self, log, summary):
        """Log "finished: <summary>", write `done` (rank 0), then wait for every rank."""
        log.info("finished: " + summary.strip())
        if self.main:
            atomic_write_text(os.path.join(self.outdir, DONE), summary)
        D.barrier()
