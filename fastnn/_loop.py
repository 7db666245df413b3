"""The one epoch loop. ``fit``, ``partial_fit``, the scikit-learn estimators and distributed
training all run it.

Each epoch it asks the optimiser's schedule for the learning rate, draws the epoch's row order
(``Orders``, the one source of shuffling), hands the batches to a body from ``_trainer`` (the
compiled loop, or step by step with gradient reduction), adds the L2 term to the loss and calls
the hooks (``_hooks``: metrics, plateau rules, the History, callbacks, progress). Inputs arrive
validated and in the backend's memory; nothing here checks them again.
"""

import math
from dataclasses import dataclass

import numpy as np

from .kernels.codes import H_L2, H_LR


@dataclass
class Plan:
    """What one training call does (every value already validated)."""

    epochs: int
    l2: float = 0.0
    loss_scale: float = 1.0    # reported loss = scale * data loss + L2 term


@dataclass
class State:
    """What carries over between calls (``partial_fit``): samples seen, plateau record."""

    samples_seen: int = 0
    best: float = math.inf
    no_improve: int = 0
    best_theta: np.ndarray = None


class Orders:
    """The epochs' row orders: the one source of shuffling.

    Drawn from ``rng`` up to ``BLOCK`` epochs at a time: ``rng.permuted`` over the rows of a
    block draws exactly what as many calls of ``rng.permutation(n)`` would, in one call (~1.2
    µs an epoch of 112 rows instead of ~3 µs). ``settle`` then leaves ``rng`` where those calls
    would have: after the orders taken, not the block drawn. With ``per_epoch`` (distributed
    training) each epoch's order comes from its own generator, ``default_rng([seed, rank,
    epoch - 1])``, so a run resumed at any epoch draws the same orders.
    """

    BLOCK = 16

    def __init__(self, rng, n, epochs, per_epoch=None):
        self.rng, self.left, self.n, self.per_epoch = rng, epochs, n, per_epoch
        rows = max(1, min(epochs, self.BLOCK, (1 << 16) // n))  # and at most 64 Ki elements
        self.ordered = np.arange(n)
        self.block = None if per_epoch is not None else np.empty((rows, n), dtype=np.int64)
        self.taken = self.drawn = 0
        self.start = None  # the state of ``rng`` before the block was drawn

    @classmethod
    def seeded(cls, seed, rank, n):
        """Orders whose epoch ``e`` (1-based) is ``default_rng([seed, rank, e - 1])``'s
        permutation of ``n`` rows."""
        return cls(None, n, 1, per_epoch=(seed, rank))

    def take(self, epoch):
        """The order of epoch ``epoch`` (1-based)."""
        if self.per_epoch is not None:
            seed, rank = self.per_epoch
            return np.random.default_rng([seed, rank, epoch - 1]).permutation(self.n)
        if self.taken == self.drawn:
            self._draw(min(self.left, len(self.block)))
            self.left -= self.drawn
        order = self.block[self.taken]
        self.taken += 1
        return order

    def _draw(self, count):
        # a block of one is always used up: no state to keep for settle
        self.start = self.rng.bit_generator.state if count > 1 else None
        block = self.block[:count]
        block[...] = self.ordered
        self.rng.permuted(block, axis=1, out=block)
        self.taken, self.drawn = 0, count

    def settle(self):
        """Rewind ``rng`` to just after the orders taken."""
        if self.per_epoch is None and self.taken < self.drawn:
            taken = self.taken
            self.rng.bit_generator.state = self.start
            self._draw(taken)


def run(model, body, opt, plan, state, history, hooks=(), orders=None, progress=None):
    """Train ``model`` for up to ``plan.epochs`` epochs of ``body``; returns ``history``.

    ``opt`` is the optimiser (its schedule sets each epoch's rate), ``state`` what carries over
    between calls, ``hooks`` the ``_hooks`` objects in the order they run, ``orders`` None (no
    shuffling) or an ``Orders``, and ``progress`` None or a ``_hooks.Progress`` that the body
    advances batch by batch. The History is recorded by a ``_hooks.Record`` among the hooks.
    """
    store = model.store
    trainer = body.trainer
    hyper = trainer.hyper
    trainer.step_lr = None  # hyper is the loop's now
    hyper[:] = opt.hyper()
    hyper[H_L2] = plan.l2
    half_l2 = 0.5 * plan.l2
    n, scale, schedule = body.rows, plan.loss_scale, opt.schedule
    if progress is not None:
        hooks = list(hooks) + [progress]
    for hook in hooks:
        hook.begin(model)
    try:
        for _ in range(plan.epochs):
            epoch = history.epochs + 1
            lr = hyper[H_LR] = schedule.epoch_rate(opt, state.samples_seen)
            total = body.epoch(None if orders is None else orders.take(epoch), epoch, progress)
            state.samples_seen += n
            loss = scale * total / n
            if half_l2:
                loss += half_l2 * store.weight_norm2()
            logs = {"loss": loss, "lr": lr}
            reason = None
            for hook in hooks:
                said = hook.epoch_end(epoch, logs)
                if reason is None:
                    reason = said
            if reason is not None:
                history.stop_reason = reason
                break
    finally:
        if orders is not None:
            orders.settle()
        for hook in hooks:
            hook.close()
    for hook in hooks:
        hook.end(history)
    return history
