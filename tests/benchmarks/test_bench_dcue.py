"""Speed of a DCUE training step: recbench's step against a bare PyTorch loop.

Run with `pytest tests/benchmarks --benchmark-only`. What is compared, per variant:

- recbench: ``DCUE._step`` (the code `fit` runs once per batch: negative sampling, random
  crops through ``SongFeatures.crops``, both towers, cosine scores, the ``hinge`` loss
  plugin, backward, optimiser step) + the learning-rate scheduler step, on a model set up
  by ``DCUE.fit`` (one step, so that the towers, loss and features are exactly fit's).
  The optimiser is built as ``fit`` builds it (SGD, Nesterov momentum 0.9, Keras decay).
- bare: the same two towers (deep copies, so identical weights), a plain numpy gather of
  the same windows from the same float16 memmap, the same maths written inline in torch.

Both consume the same pre-drawn batches: users, positives, negatives and crop offsets are
drawn once; recbench gets them through a replaying sampler and a replaying random source,
so both sides train on the same crops (their first losses are asserted equal).
Paper size: 32 pairs x (1 + 20 negatives) windows of 3 s (129 frames x 128 mels), conv1d
128-128-256-256-256, vectors of 256. Rounds alternate (a bare block in the untimed setup,
then the timed recbench block), so load changes on a shared machine hit both alike.

Threads: torch runs on one intra-op thread here (``RECBENCH_BENCH_THREADS`` sets another
number), as a cell does under a one-thread budget. On a shared, loaded 2-core machine two
OpenMP threads made the same step 4-10x slower and erratic; one thread gives stable
figures. Both sides always run under the same setting.

Speed is a measurement, not an assertion: steps/s, pairs/s and the ratio (target
recbench / bare <= 1.10) go into ``extra_info`` and are printed.
"""

from __future__ import annotations

import copy
import os
import time

import numpy as np
import pytest
import scipy.sparse as sp

pytestmark = pytest.mark.benchmark

N_USERS, N_TRAIN_SONGS, N_TEST_SONGS = 20_000, 1_000, 200
N_MELS, WINDOW, SONG_STEPS = 128, 129, 151  # 3-s windows of 3.5-s songs at 22,050 Hz, hop 512
BATCH, NEGATIVES = 32, 20
STEPS_PER_ROUND, ROUNDS = 4, 3  # 12 timed steps per side (+ a 4-step warm-up)
TARGET_RATIO = 1.10
THREADS = int(os.environ.get("RECBENCH_BENCH_THREADS", "1"))

VARIANTS = {  # name -> DCUE options
    "fp32": {},
    "shared_negatives": {"shared_negatives": True},
    "amp_bf16": {"amp": True},
}


def _report(capsys, text: str) -> None:
    with capsys.disabled():
        print("\n" + text)


@pytest.fixture(scope="module", autouse=True)
def torch_threads():
    """torch intra-op threads for this module (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


class _ReplayRandom:
    """Stands in for the numpy Generator `_step` passes to `SongFeatures.crops`: returns
    the pre-drawn crop offsets (uniform [0, 1) values) of each step in turn."""

    def __init__(self, draws: list[np.ndarray]):
        self.draws, self.i = draws, 0

    def random(self, n: int) -> np.ndarray:
        out = self.draws[self.i]
        assert len(out) == n, "replayed crop offsets do not match the batch"
        self.i += 1
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(dataset, split, features): 20,000 users, 1,000 training + 200 cold songs of random
    float16 log-mel frames stored as a memmap (as the feature cache stores them)."""
    from recbench.data import Dataset, Split
    from recbench.features import SongFeatures

    rng = np.random.default_rng(0)
    n_songs = N_TRAIN_SONGS + N_TEST_SONGS
    path = tmp_path_factory.mktemp("dcue-bench") / "logmel.npy"
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16,
                                    shape=(n_songs, SONG_STEPS, N_MELS))
    for s0 in range(0, n_songs, 200):
        arr[s0:s0 + 200] = rng.normal(-30, 10, size=(len(arr[s0:s0 + 200]), SONG_STEPS,
                                                      N_MELS))
    arr.flush()
    arr = np.load(path, mmap_mode="r")
    feats = SongFeatures("logmel", arr, np.full(n_songs, SONG_STEPS), np.full(N_MELS, -30.0,
                         np.float32), np.full(N_MELS, 10.0, np.float32), WINDOW)
    plays = 20 * N_USERS
    rows = rng.integers(0, N_USERS, plays)
    cols = rng.integers(0, n_songs, plays)
    counts = sp.csr_matrix((np.ones(plays, np.float32), (rows, cols)), shape=(N_USERS, n_songs))
    counts.data[:] = 1.0
    train_songs = np.arange(N_TRAIN_SONGS)
    test_songs = np.arange(N_TRAIN_SONGS, n_songs)
    keep = np.zeros(n_songs, np.float32)
    keep[train_songs] = 1
    train = sp.csr_matrix(counts @ sp.diags(keep))
    train.eliminate_zeros()
    test = sp.csr_matrix(counts - train)
    test.eliminate_zeros()
    empty = sp.csr_matrix((N_USERS, n_songs), dtype=np.float32)
    ds = Dataset("bench-random", counts, np.array([f"u{i}" for i in range(N_USERS)]),
                 np.array([f"s{i}" for i in range(n_songs)]), synthetic=True)
    split = Split("bench", 0, "cold-item", train, empty, test, train_songs,
                  np.zeros(0, np.int64), test_songs, np.arange(N_USERS), np.arange(N_USERS))
    return ds, split, feats


def _fitted(world, options: dict):
    """A DCUE set up by `fit` (one step, no validation) with paper-size defaults."""
    from recbench_builtin.recommenders.dcue import DCUE

    from recbench.components import FitContext
    from recbench.registry import build_registry

    ds, split, feats = world
    reg = build_registry()
    model = DCUE(max_epochs=1, steps_per_epoch=1, negatives=NEGATIVES, batch_size=BATCH,
                 **options)
    model.fit(FitContext(ds, split, seed=0, create=reg.create, features=lambda kind: feats))
    model._user_net.train()
    model._item_net.train()
    return model


def _optimiser(model, user_net, item_net):
    """SGD + Nesterov + Keras-style decay over the two towers, as `fit` builds it."""
    import torch

    o = model.options
    opt = torch.optim.SGD([{"params": list(user_net.parameters()), "lr": o["lr"]},
                           {"params": list(item_net.parameters()), "lr": o["lr"]}],
                          lr=o["lr"], momentum=o["momentum"], nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + o["lr_decay"] * t))
    return opt, sched


def _batches(n: int, shared: bool, lengths: np.ndarray, seed: int = 1) -> list[dict]:
    """n pre-drawn batches: users, positives, negatives, crop offsets in [0, 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        users = rng.integers(0, N_USERS, BATCH)
        pos = rng.integers(0, N_TRAIN_SONGS, BATCH)
        neg = rng.integers(0, N_TRAIN_SONGS, (1 if shared else BATCH, NEGATIVES))
        out.append({"users": users, "pos": pos, "neg": neg,
                    "u": rng.random(BATCH + neg.size)})
    return out


class _ReplaySampler:
    """Returns the pre-drawn negatives of each step in turn (the `sample` call of a
    recbench Sampler)."""

    def __init__(self, negs: list[np.ndarray]):
        self.negs, self.i = negs, 0

    def sample(self, users, n, rng, scorer=None):
        out = self.negs[self.i]
        assert out.shape == (len(users), n), "replayed negatives do not match the batch"
        self.i += 1
        return out


def _recbench_runner(model, batches):
    """Runs `_step` (+ the scheduler step) over the batches, a block at a time."""
    opt, sched = _optimiser(model, model._user_net, model._item_net)
    sampler = _ReplaySampler([b["neg"] for b in batches])
    rand = _ReplayRandom([b["u"] for b in batches])
    losses: list[float] = []

    def block(steps: int) -> None:
        for _ in range(steps):
            b = batches[len(losses)]
            losses.append(model._step(b["users"], b["pos"], sampler, None, rand, opt, None))
            sched.step()

    return block, losses


def _bare_runner(model, user_net, item_net, feats, batches, shared: bool, amp: bool):
    """The same step written as a plain PyTorch loop (no recbench code on the path)."""
    import contextlib

    import torch
    import torch.nn.functional as F

    opt, sched = _optimiser(model, user_net, item_net)
    arr, w = feats.array, feats.window
    mean, inv_std = feats.mean, (1.0 / feats.std).astype(np.float32)
    margin = model.options["margin"]
    offsets = np.arange(w)
    losses: list[float] = []

    def block(steps: int) -> None:
        for _ in range(steps):
            b = batches[len(losses)]
            items = np.concatenate([b["pos"], b["neg"].ravel()])
            room = np.maximum(feats.lengths[items] - w, 0)
            starts = (b["u"] * (room + 1)).astype(np.int64)
            raw = arr[items[:, None], starts[:, None] + offsets]  # (N, w, C) float16
            x = torch.from_numpy((raw.astype(np.float32) - mean) * inv_std)
            ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if amp
                   else contextlib.nullcontext())
            with ctx:
                u = user_net(torch.from_numpy(b["users"]))
                v = item_net(x)
            u = F.normalize(u.float(), dim=-1, eps=1e-8)
            v = F.normalize(v.float(), dim=-1, eps=1e-8)
            pos_s = (u * v[:BATCH]).sum(dim=1)
            if shared:
                neg_s = u @ v[BATCH:].T
            else:
                neg_s = torch.bmm(v[BATCH:].view(BATCH, NEGATIVES, -1), u.unsqueeze(2)).squeeze(2)
            loss = torch.clamp(margin - pos_s[:, None] + neg_s, min=0.0).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))

    return block, losses


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_bench_dcue_step_vs_bare_loop(benchmark, world, variant, capsys):
    """recbench's DCUE step vs the same step as a bare loop: same model, same crops."""
    import torch

    options = VARIANTS[variant]
    shared, amp = bool(options.get("shared_negatives")), bool(options.get("amp"))
    _, _, feats = world
    model = _fitted(world, options)
    user_net, item_net = copy.deepcopy(model._user_net), copy.deepcopy(model._item_net)
    n_steps = STEPS_PER_ROUND * (ROUNDS + 1) + 2  # + a warm-up round + 2 spare
    batches = _batches(n_steps, shared, feats.lengths)
    ours, ours_losses = _recbench_runner(model, batches)
    bare, bare_losses = _bare_runner(model, user_net, item_net, feats, batches, shared, amp)
    bare_times: list[float] = []
    bare_cpu: list[float] = []
    ours_cpu: list[float] = []

    def setup():  # untimed by pytest-benchmark: the bare block right before each round
        c0, t0 = time.process_time(), time.perf_counter()
        bare(STEPS_PER_ROUND)
        bare_times.append(time.perf_counter() - t0)
        bare_cpu.append(time.process_time() - c0)

    def timed():
        c0 = time.process_time()
        ours(STEPS_PER_ROUND)
        ours_cpu.append(time.process_time() - c0)

    benchmark.pedantic(timed, setup=setup, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    # same model, same batches: the first step's loss is the same number on both sides
    np.testing.assert_allclose(ours_losses[0], bare_losses[0], rtol=2e-3 if amp else 1e-4)
    assert np.isfinite(ours_losses).all() and np.isfinite(bare_losses).all()

    timed_bare = bare_times[1:] if len(bare_times) > 1 else bare_times  # drop the warm-up
    ours_s = benchmark.stats.stats.min / STEPS_PER_ROUND
    bare_s = min(timed_bare) / STEPS_PER_ROUND
    ratio = ours_s / bare_s
    ours_rounds = benchmark.stats.stats.data
    paired = float(np.median([o / b for o, b in zip(ours_rounds, timed_bare)]))
    # CPU time of the process (one thread: little moved by other jobs on the machine)
    cpu_ratio = min(ours_cpu[1:] or ours_cpu) / min(bare_cpu[1:] or bare_cpu)
    pairs_per_step = BATCH
    benchmark.extra_info.update(
        variant=variant, threads=torch.get_num_threads(), steps_per_s=round(1 / ours_s, 3),
        pairs_per_s=round(pairs_per_step / ours_s, 1), bare_steps_per_s=round(1 / bare_s, 3),
        ratio_vs_bare=round(ratio, 3), paired_median_ratio=round(paired, 3),
        cpu_time_ratio=round(cpu_ratio, 3),
        target_ratio=TARGET_RATIO, windows_per_step=BATCH + batches[0]["neg"].size,
        steps_timed_per_side=STEPS_PER_ROUND * ROUNDS)
    _report(capsys, f"DCUE step [{variant}], {torch.get_num_threads()} threads: recbench "
                    f"{1 / ours_s:.2f} steps/s ({pairs_per_step / ours_s:.0f} pairs/s), bare "
                    f"{1 / bare_s:.2f} steps/s -> ratio {ratio:.3f} (paired median "
                    f"{paired:.3f}, CPU time {cpu_ratio:.3f}; target <= {TARGET_RATIO})")
