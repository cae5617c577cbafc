"""A DataLoader read as one stream of batches across epochs, positioned by step.

:meth:`budgetopt.Segment.batches` draws a segment's batches from a :class:`LoaderStream`
that its :class:`~budgetopt.BudgetedRun` keeps across segments; the data order each
mode gets is documented there. This module holds the mechanics:

- **Epochs.** When the loader's iterator ends, the next epoch starts: ``set_epoch(epoch)``
  on the loader's sampler and on its batch sampler's sampler, when they have one
  (``DistributedSampler``; the same two places Lightning looks), then ``iter(loader)``.
  A batch is drawn only when a step is about to train on it, so a budget stops exactly at
  its last step, in the middle of an epoch if that is where it ends.
- **Positions.** ``pos`` counts the batches drawn since epoch 0 began. :meth:`seek`
  moves the stream to a position: forward by drawing and dropping batches; back to a
  *bookmark* (position 0, and every branch-mode trunk snapshot) by re-creating the
  bookmark's epoch iterator from the random state saved when that epoch began, dropping
  the batches before the position, and restoring the random state saved at the
  position. Drawing, dropping and re-reading batches loads data but trains nothing.
- **Random state** saved and restored: torch's CPU generator (and CUDA's, once CUDA is
  initialised), and the ``generator`` of the loader, of its sampler and of its batch
  sampler's sampler. These decide a DataLoader's shuffling, its workers' seeds, and the
  randomness of the steps that follow (dropout, augmentation in the main process), so a
  stream rewound to a bookmark repeats them. Python's ``random`` and NumPy's global
  state are not touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from budgetopt.errors import InputError, InputTypeError


@dataclass(frozen=True)
class _Bookmark:
    """Where to rewind to: the epoch of position ``pos``, the position and random state
    at which that epoch's iterator was created, and the random state at ``pos`` itself."""

    pos: int
    epoch: int
    epoch_pos: int
    epoch_state: tuple
    state: tuple


def _samplers(loader: object) -> list[object]:
    """The loader's sampler and its batch sampler's sampler, without duplicates."""
    found: dict[int, object] = {}
    sampler = getattr(loader, "sampler", None)
    if sampler is not None:
        found[id(sampler)] = sampler
    inner = getattr(getattr(loader, "batch_sampler", None), "sampler", None)
    if inner is not None:
        found[id(inner)] = inner
    return list(found.values())


class LoaderStream:
    """The batches of ``loader`` as one stream across epochs (see the module docstring).

    Args:
        loader: a ``torch.utils.data.DataLoader`` or any iterable that can be iterated
            again (a list of batches); one pass over it is an epoch.
    """

    def __init__(self, loader: Iterable) -> None:
        if isinstance(loader, Iterator) or not isinstance(loader, Iterable):
            raise InputTypeError(
                f"loader must be a DataLoader or another re-iterable of batches, got {type(loader).__name__} "
                "(an iterator can be read only once: its epochs cannot be replayed)"
            )
        self.loader = loader
        self.epoch = 0
        self.pos = 0
        self._iter: Iterator | None = None  # None: the current epoch's iterator is created at the next draw
        self._epoch_pos = 0
        self._epoch_state: tuple = ()
        self._bookmarks: dict[int, _Bookmark] = {}
        generators: dict[int, torch.Generator] = {}
        for obj in (loader, *_samplers(loader)):
            generator = getattr(obj, "generator", None)
            if isinstance(generator, torch.Generator):
                generators[id(generator)] = generator
        self._generators = list(generators.values())

    def __repr__(self) -> str:
        return f"LoaderStream(epoch={self.epoch}, pos={self.pos}, bookmarks={sorted(self._bookmarks)})"

    # -- random state -------------------------------------------------------------------

    def _random_state(self) -> tuple:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        return torch.get_rng_state(), cuda, [g.get_state() for g in self._generators]

    def _set_random_state(self, state: tuple) -> None:
        cpu, cuda, generators = state
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        for generator, saved in zip(self._generators, generators):
            generator.set_state(saved)

    # -- drawing ------------------------------------------------------------------------

    def draw(self) -> Any:
        """The batch at ``pos``; ``pos`` moves on by one."""
        while True:
            if self._iter is None:
                self._epoch_pos, self._epoch_state = self.pos, self._random_state()
                if self.pos == 0 and 0 not in self._bookmarks:
                    self._bookmarks[0] = _Bookmark(0, 0, 0, self._epoch_state, self._epoch_state)
                for sampler in _samplers(self.loader):
                    set_epoch = getattr(sampler, "set_epoch", None)
                    if callable(set_epoch):
                        set_epoch(self.epoch)
                self._iter = iter(self.loader)
            try:
                batch = next(self._iter)
            except StopIteration:
                if self.pos == self._epoch_pos:
                    raise InputError(f"the loader yielded no batch in epoch {self.epoch}: it has nothing to train on") from None
                self.epoch += 1
                self._iter = None
                continue
            self.pos += 1
            return batch

    # -- positions ----------------------------------------------------------------------

    def bookmark(self) -> None:
        """Remember the current position and random state, to :meth:`seek` back to later."""
        if self._iter is None:  # at the start of an epoch whose iterator is not created yet
            state = self._random_state()
            self._bookmarks[self.pos] = _Bookmark(self.pos, self.epoch, self.pos, state, state)
        else:
            self._bookmarks[self.pos] = _Bookmark(self.pos, self.epoch, self._epoch_pos, self._epoch_state, self._random_state())

    def seek(self, pos: int) -> None:
        """Move to ``pos``: the next :meth:`draw` returns the batch at ``pos``.

        Back to a bookmark: the same batches and random state as when the stream was
        there. Back to another position: from the nearest bookmark before it, then
        forward. Forward: batches drawn and dropped (their random state is not restored).
        """
        if pos == self.pos:
            return
        if pos < self.pos:
            mark = self._bookmarks[max(p for p in self._bookmarks if p <= pos)]  # position 0 is always one
            self._set_random_state(mark.epoch_state)
            self.epoch, self.pos, self._iter = mark.epoch, mark.epoch_pos, None
            while self.pos < mark.pos:
                self.draw()
            self._set_random_state(mark.state)
        while self.pos < pos:
            self.draw()
