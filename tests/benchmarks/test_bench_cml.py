"""Speed of a CML training step: recbench's step against a bare PyTorch loop.

Run with `pytest tests/benchmarks --benchmark-only`. What is compared:

- recbench: ``CML._step`` (the code `fit` runs once per batch after drawing negatives:
  squared distances through ``_metric.sq_distances``, the rank-weighted hinge
  ``_metric.cml_hinge``, backward, Adam step, unit-ball clipping of every point) on a
  model set up by ``CML.fit`` (one step), with the Adam optimiser `fit` builds.
- bare: copies of the same user and song points (identical values), the same maths
  written inline in torch, a plain Adam, the same clipping.

Both consume the same pre-drawn batches (users, played songs, negatives), and their first
losses are asserted equal. Size: 20,000 users x 5,000 songs, 64 dimensions, 256 pairs x 10
negatives per step. Rounds alternate (a bare block in the untimed setup, then the timed
recbench block), on one torch thread (``RECBENCH_BENCH_THREADS`` sets another number).

Speed is a measurement, not an assertion: steps/s, pairs/s and the ratio (target
recbench / bare <= 1.10) go into ``extra_info`` and are printed.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import scipy.sparse as sp

pytestmark = pytest.mark.benchmark

N_USERS, N_SONGS, DIM = 20_000, 5_000, 64
BATCH, NEGATIVES = 256, 10
STEPS_PER_ROUND, ROUNDS = 50, 7
TARGET_RATIO = 1.10
THREADS = int(os.environ.get("RECBENCH_BENCH_THREADS", "1"))


@pytest.fixture(scope="module", autouse=True)
def torch_threads():
    """torch intra-op threads for this module (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fitted():
    """A CML set up by `fit` (one step, no validation data) on random plays."""
    from recbench.components import FitContext
    from recbench.data import Dataset, Split
    from recbench.registry import build_registry
    from recbench_builtin.recommenders.cml import CML

    rng = np.random.default_rng(0)
    plays = 20 * N_USERS
    counts = sp.csr_matrix((np.ones(plays, np.float32),
                            (rng.integers(0, N_USERS, plays), rng.integers(0, N_SONGS, plays))),
                           shape=(N_USERS, N_SONGS))
    counts.data[:] = 1.0
    empty = sp.csr_matrix((N_USERS, N_SONGS), dtype=np.float32)
    songs = np.arange(N_SONGS)
    ds = Dataset("bench-random", counts, np.array([f"u{i}" for i in range(N_USERS)]),
                 np.array([f"s{i}" for i in range(N_SONGS)]), synthetic=True)
    split = Split("bench", 0, "warm", counts, empty, empty, songs, np.zeros(0, np.int64),
                  songs, np.arange(N_USERS), np.arange(N_USERS))
    model = CML(dim=DIM, batch_size=BATCH, negatives=NEGATIVES, max_epochs=1,
                steps_per_epoch=1)
    model.fit(FitContext(ds, split, seed=0, create=build_registry().create))
    return model


def _batches(n: int, seed: int = 1) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, N_USERS, BATCH), rng.integers(0, N_SONGS, BATCH),
             rng.integers(0, N_SONGS, (BATCH, NEGATIVES))) for _ in range(n)]


def _bare_runner(users0, items0, o: dict, batches):
    """The same step as a plain PyTorch loop (no recbench code on the path)."""
    import torch

    users = torch.nn.Parameter(users0.clone())
    items = torch.nn.Parameter(items0.clone())
    opt = torch.optim.Adam([users, items], lr=o["lr"])
    margin, n_items = o["margin"], N_SONGS
    losses: list[float] = []

    def block(steps: int) -> None:
        for _ in range(steps):
            bu, bp, bn = (torch.from_numpy(a) for a in batches[len(losses)])
            u = users[bu]
            d_pos = ((u - items[bp]) ** 2).sum(-1)
            d_neg = ((u[:, None, :] - items[bn]) ** 2).sum(-1)
            viol = margin + d_pos[:, None] - d_neg
            w = torch.log1p(torch.floor(n_items * (viol.detach() > 0).sum(1) / NEGATIVES))
            loss = (torch.clamp(viol, min=0.0).sum(1) * w).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for t in (users, items):
                    t.div_(torch.clamp(t.norm(dim=1, keepdim=True), min=1.0))
            losses.append(float(loss.detach()))

    return block, losses


def test_bench_cml_step_vs_bare_loop(benchmark, fitted, capsys):
    """recbench's CML step vs the same step as a bare loop: same points, same batches."""
    import torch

    from recbench_builtin._training import make_optimizer

    model = fitted
    users0, items0 = model._users.detach().clone(), model._items.detach().clone()
    n_steps = STEPS_PER_ROUND * (ROUNDS + 1) + 2
    batches = _batches(n_steps)
    opt, _ = make_optimizer("adam", model._parameters(), model.options["lr"])
    ours_losses: list[float] = []

    def ours(steps: int) -> None:
        for _ in range(steps):
            ours_losses.append(model._step(*batches[len(ours_losses)], opt))

    bare, bare_losses = _bare_runner(users0, items0, model.options, batches)
    bare_times: list[float] = []

    def setup():  # untimed: the bare block right before each round
        t0 = time.perf_counter()
        bare(STEPS_PER_ROUND)
        bare_times.append(time.perf_counter() - t0)

    benchmark.pedantic(lambda: ours(STEPS_PER_ROUND), setup=setup, rounds=ROUNDS,
                       warmup_rounds=1, iterations=1)
    np.testing.assert_allclose(ours_losses[0], bare_losses[0], rtol=1e-5)
    assert np.isfinite(ours_losses).all()
    ours_s = benchmark.stats.stats.min / STEPS_PER_ROUND
    bare_s = min(bare_times[1:] or bare_times) / STEPS_PER_ROUND
    ratio = ours_s / bare_s
    paired = float(np.median([o / b for o, b in zip(benchmark.stats.stats.data,
                                                     bare_times[1:])]))
    benchmark.extra_info.update(
        threads=torch.get_num_threads(), steps_per_s=round(1 / ours_s, 2),
        pairs_per_s=round(BATCH / ours_s, 1), bare_steps_per_s=round(1 / bare_s, 2),
        ratio_vs_bare=round(ratio, 3), paired_median_ratio=round(paired, 3),
        target_ratio=TARGET_RATIO)
    with capsys.disabled():
        print(f"\nCML step, {torch.get_num_threads()} threads: recbench {1 / ours_s:.1f} "
              f"steps/s ({BATCH / ours_s:.0f} pairs/s), bare {1 / bare_s:.1f} steps/s -> "
              f"ratio {ratio:.3f} (paired median {paired:.3f}; target <= {TARGET_RATIO})")
