"""Sequential models and their parts: causal masking (perturbing future items), the skip
contrastive loss against a hand-computed case, MRR ties, the sequential task's numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from recbench_builtin.losses_sequential import SkipContrastiveLoss
from recbench_builtin.metrics_sequential import expected_reciprocal_rank
from recbench_builtin.sequential.sasrec import PARAMS, build_net
from users14_data import synth

from recbench.components import CellContext, FitContext
from recbench.registry import default_registry


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
def test_no_position_sees_the_future(encoder):
    """Changing the items after position t leaves the representations up to t unchanged
    (and does change those after it: the check can fail)."""
    o = {p.name: p.default for p in PARAMS}
    o.update(dim=16, layers=2, heads=2, max_len=12, dropout=0.0)
    torch.manual_seed(0)
    net = build_net(50, o, encoder).eval()
    seq = torch.randint(0, 50, (3, 12))
    with torch.no_grad():
        base = net(seq)
        for t in range(11):
            other = seq.clone()
            other[:, t + 1:] = torch.randint(0, 50, (3, 11 - t))
            out = net(other)
            torch.testing.assert_close(out[:, :t + 1], base[:, :t + 1], rtol=0, atol=1e-5)
            assert (out[:, t + 1:] - base[:, t + 1:]).abs().max() > 1e-4


def test_right_padding_does_not_change_real_positions():
    o = {p.name: p.default for p in PARAMS}
    o.update(dim=8, layers=1, max_len=6, dropout=0.0)
    net = build_net(20, o, "transformer").eval()
    a = torch.tensor([[3, 4, 5, -1, -1, -1]])
    b = torch.tensor([[3, 4, 5, 7, 8, 9]])
    with torch.no_grad():
        torch.testing.assert_close(net(a)[:, :3], net(b)[:, :3], rtol=0, atol=1e-5)


def test_skip_contrastive_by_hand():
    loss = SkipContrastiveLoss()
    pos = torch.tensor([1.0, 0.5, 2.0])
    neg = torch.tensor([[0.0, -math.inf], [1.0, 2.0], [-math.inf, -math.inf]])
    # row 0: -log(e / (e + 1)) = log(1 + e^-1); row 1: -log(e^.5 / (e^.5 + e + e^2));
    # row 2 has no skipped track: left out of the mean
    r0 = math.log(1 + math.exp(-1.0))
    r1 = -math.log(math.exp(0.5) / (math.exp(0.5) + math.e + math.exp(2.0)))
    assert float(loss(pos, neg)) == pytest.approx((r0 + r1) / 2, abs=1e-6)
    hot = SkipContrastiveLoss(temperature=0.5)
    assert float(hot(pos[:1], neg[:1])) == pytest.approx(math.log(1 + math.exp(-2.0)),
                                                          abs=1e-6)
    none = loss(pos[2:], neg[2:])
    assert float(none) == 0.0


def test_expected_reciprocal_rank_ties_by_hand():
    # one positive tied with two negatives, one negative above: ranks 2, 3, 4 equally likely
    s = np.array([5.0, 3.0, 3.0, 3.0, 1.0])
    y = np.array([0, 1, 0, 0, 0], bool)
    assert expected_reciprocal_rank(s, y) == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)
    assert expected_reciprocal_rank(s, np.array([1, 0, 0, 0, 0], bool)) == 1.0
    assert math.isnan(expected_reciprocal_rank(s, np.zeros(5, bool)))


@pytest.fixture(scope="module")
def session_world():
    from recbench_builtin.splits_users import NextSessionSplit

    ds = synth(skip_strength=1.0)
    return ds, NextSessionSplit().split(ds, 0)


def _run(ds, split, name, **opts):
    reg = default_registry()
    model = reg.create("recommender", name, **opts)
    fit = FitContext(dataset=ds, split=split, seed=0, create=reg.create)
    model.fit(fit)
    metrics = [(c, reg.create("metric", n), k) for c, n, k in
               (("hr@10", "hr", 10), ("mrr", "mrr", None))]
    task = reg.create("task", "sequential", max_steps=3)
    assert task.applies_to(model)
    return model, task.run(CellContext(dataset=ds, split=split, model=model,
                                       metrics=metrics, fit=fit, seed=0, bootstrap=50))


def test_sequential_task_popularity_by_hand(session_world):
    """seq-popularity's HR@10 is the share of evaluated next tracks among the 10 most
    played training songs (songs tied at the cutoff share its slots), computed by hand."""
    ds, split = session_world
    model, out = _run(ds, split, "seq-popularity")
    pop = model._pop
    v = np.sort(pop)[-10]  # the 10th largest: songs above are in, tied ones share slots
    p_in = np.where(pop > v, 1.0, 0.0)
    p_in[pop == v] = (10 - (pop > v).sum()) / (pop == v).sum()
    ev, part = ds.events, split.event_part
    hits = []
    for u in out.per_user["users"]:
        lo, hi = np.searchsorted(ev.user, [u, u + 1])
        test = [e for e in range(lo, hi) if part[e] == 2 and not ev.skipped[e]][:3]
        hits.append(np.mean([p_in[ev.song[e]] for e in test]))
    assert out.metrics["hr@10"] == pytest.approx(np.mean(hits), abs=1e-12)
    assert 0 <= out.metrics["skip@10"] <= 1
    assert out.metric_info["skip@10"]["higher_is_better"] is False


def test_sasrec_learns_beyond_popularity(session_world):
    ds, split = session_world
    _, pop = _run(ds, split, "seq-popularity")
    _, sas = _run(ds, split, "sasrec", dim=16, layers=1, max_len=20, max_epochs=6,
                  skip_loss="skip-contrastive")
    assert sas.metrics["mrr"] > pop.metrics["mrr"]


def test_fit_report_says_what_was_read(session_world):
    ds, split = session_world
    model, _ = _run(ds, split, "seq-popularity")
    assert model.fit_report()["uses"] == ["interactions", "events", "skips"]


def test_task_refuses_a_split_without_sessions():
    from recbench.errors import ConfigError
    from recbench_builtin.splits_users import ColdUserKSplit

    ds = synth(skip_strength=1.0)
    split = ColdUserKSplit().split(ds, 0)
    with pytest.raises(ConfigError, match="next-session"):
        _run(ds, split, "seq-popularity")


def test_training_windows_by_hand():
    """Skipped tracks are neither inputs nor targets; each position's negatives are the
    skips of its target's session (a song skipped, then played as the target: not one)."""
    model = default_registry().create("recommender", "sasrec", max_len=4, max_skips=2)
    songs = np.array([1, 9, 2, 3, 8, 3, 4])
    skipped = np.array([0, 1, 0, 0, 1, 0, 0], bool)
    sess = [np.array([0, 0, 0, 1, 1, 1, 1])]
    x, y, k, neg, ss, ts, si = model._windows([(songs, skipped)], sess)
    # played: 1 2 | 3 3 4 (sessions 0 | 1); one window of max_len + 1 = 5 tracks
    assert x.tolist() == [[1, 2, 3, 3]] and y.tolist() == [[2, 3, 3, 4]]
    assert not k.any()
    assert neg[0, :, 0].tolist() == [9, 8, 8, 8]  # session 0 skipped 9, session 1 skipped 8
    assert (neg[0, :, 1] == -1).all()
    # the summary's skips: 9 after one played track, 8 after three (age 0 at the position
    # whose target follows them: positions 0 and 2)
    assert ss[0, 0, :3].tolist() == [9, 8, -1] and ss[0, 1, :2].tolist() == [1, 3]
    assert ss[0, 2, :2].tolist() == [0, 1] and ts[0].tolist() == [0, 1, 1, 1]
    assert si[0].tolist() == [0, 0, 1, 1]  # each input's own session
    # skip_negatives = before: 8 comes after the first 3 of session 1, before the second
    model.options["skip_negatives"] = "before"
    assert model._windows([(songs, skipped)], sess)[3][0, :, 0].tolist() == [9, -1, 8, 8]
    again = model._windows([(np.array([1, 5, 5]), np.array([0, 1, 0], bool))],
                           [np.zeros(3, np.int64)])
    assert again[3][0, 0].tolist() == [-1, -1]  # 5 skipped, then played next: no negative


def _summary_net(seed=0):
    o = {p.name: p.default for p in PARAMS}
    o.update(dim=8, layers=1, max_len=6, dropout=0.0, skip_summary=True)
    torch.manual_seed(seed)
    net = build_net(30, o, "transformer").eval()
    torch.nn.init.normal_(net.summary.w)  # zero at initialisation: make it act
    return net


def test_skip_summary_sees_only_skips_logged_before_each_target():
    """A skip logged after `at` played tracks changes the positions whose target comes
    after it (positions at - 1 on) and none before; with no skip visible the summary adds
    nothing (the plain net's output); a skip of another session than the target's goes
    to another bucket (another output)."""
    net = _summary_net()
    seq = torch.tensor([[3, 4, 5, 6, 7, 8]])
    plain = {**{p.name: p.default for p in PARAMS}, "dim": 8, "layers": 1, "max_len": 6,
             "dropout": 0.0}
    base_net = build_net(30, plain, "transformer").eval()
    base_net.load_state_dict({k: v for k, v in net.state_dict().items()
                              if not k.startswith("summary.")})
    one = torch.ones(1, 6, dtype=torch.long)
    none = (torch.tensor([[-1, -1]]), torch.zeros(1, 2, dtype=torch.long),
            torch.ones(1, 2, dtype=torch.long), one)
    with torch.no_grad():
        h0 = net(seq, None, none)
        torch.testing.assert_close(h0, base_net(seq), rtol=0, atol=1e-6)
        for at in range(1, 6):
            skip = (torch.tensor([[12, -1]]), torch.tensor([[at, 0]]),
                    torch.ones(1, 2, dtype=torch.long), one)
            h = net(seq, None, skip)
            torch.testing.assert_close(h[:, :at - 1], h0[:, :at - 1], rtol=0, atol=1e-6)
            assert (h[:, at - 1:] - h0[:, at - 1:]).abs().amax(dim=-1).min() > 1e-4
            other = net(seq, None, (skip[0], skip[1], torch.zeros(1, 2, dtype=torch.long),
                                    one))
            assert (other[:, at - 1:] - h[:, at - 1:]).abs().amax(dim=-1).min() > 1e-4


def test_scoring_reads_the_skips_of_the_history_as_training_does():
    """represent() gives the history's last position the skips logged before the next
    track with the same `at` as a training window would (the skip after the last play
    has age 0) and marks those of the session it continues (the history's third array);
    a history's skips change its score only with skip_summary."""
    model = default_registry().create("recommender", "sasrec", max_len=3, dim=8,
                                      skip_summary=True, summary_skips=4)
    model.net, model._device, model._scorer = _summary_net(), torch.device("cpu"), None
    model.options["max_len"] = 6
    songs = np.array([3, 20, 4, 5, 21])
    skipped = np.array([0, 1, 0, 0, 1], bool)
    now = np.array([0, 0, 0, 1, 1], bool)
    pb = np.cumsum(~skipped) - ~skipped
    ss, at, ses = model._summary_skips(songs, skipped, pb, 0, 3, now)
    assert ss[:3].tolist() == [20, 21, -1] and at[:2].tolist() == [1, 3]
    assert ses[:2].tolist() == [0, 1]
    with_skips = model.represent([(songs, skipped, now)])
    earlier = model.represent([(songs, skipped)])  # both skips from earlier sessions
    without = model.represent([(songs[~skipped], skipped[~skipped])])
    assert np.abs(with_skips - without).max() > 1e-4
    assert np.abs(with_skips - earlier).max() > 1e-4
    model.options["skip_summary"] = False
    model._scorer = None
    np.testing.assert_allclose(model.represent([(songs, skipped, now)]), without, atol=1e-6)


@pytest.mark.parametrize("detach", [True, False])
def test_detached_skip_term_leaves_song_vectors_to_the_next_item_loss(detach):
    """With skip_detach_items the term's gradient reaches the representations only: the
    biases' gradients and those of the skipped songs' vectors (9 and 8, never inputs here)
    equal those of the next-item loss alone (without it they differ: the check can fail).
    Songs read as inputs still get the term's gradient through the representation."""
    reg = default_registry()
    grads = []
    for weight in (0.0, 1.0):
        model = reg.create("recommender", "sasrec", max_len=4, max_skips=2, dim=8,
                           dropout=0.0, skip_loss="skip-contrastive", skip_weight=weight,
                           skip_detach_items=detach)
        torch.manual_seed(0)
        model.net, model._device = build_net(12, model.options, "transformer"), "cpu"
        songs = np.array([1, 9, 2, 3, 8, 3, 4])
        skipped = np.array([0, 1, 0, 0, 1, 0, 0], bool)
        windows = model._windows([(songs, skipped)], [np.array([0, 0, 0, 1, 1, 1, 1])])

        class Keep:
            def zero_grad(self):
                model.net.zero_grad()

            def step(self):
                grads.append((model.net.item.weight.grad.clone(),
                              model.net.bias.grad.clone(),
                              model.net.pos.weight.grad.clone()))

        model._step(windows, np.array([0]), reg.create("loss", "skip-contrastive"), Keep())
    (i0, b0, p0), (i1, b1, p1) = grads
    assert (p0 - p1).abs().max() > 1e-6  # the term does act on the representations
    assert torch.allclose(i0[[8, 9]], i1[[8, 9]], atol=1e-7) == detach
    assert torch.allclose(b0, b1, atol=1e-7) == detach


def test_task_flags_the_events_of_the_held_out_session(session_world):
    """Each step's history ends with the held-out session's earlier events, flagged by the
    third array (True exactly for them), and its target is the next played track."""
    ds, split = session_world
    task = default_registry().create("task", "sequential", max_steps=3)
    ev, part = ds.events, split.event_part
    users = np.asarray(split.test_users)[:20]
    n = 0
    for u, steps, _ in task._cases(CellContext(dataset=ds, split=split, model=None,
                                               metrics=[], fit=None, seed=0,
                                               bootstrap=0), users):
        lo, hi = np.searchsorted(ev.user, [u, u + 1])
        test = [e for e in range(lo, hi) if part[e] == 2]
        for (songs, skipped, now), target in steps:
            j = int(now.sum())
            assert now[-j:].all() if j else not now.any()
            assert not now[:len(now) - j].any()
            assert songs[len(now) - j:].tolist() == ev.song[test[:j]].tolist()
            assert target == ev.song[test[j]] and not ev.skipped[test[j]]
            n += 1
    assert n > 10


def test_skip_summary_excludes_input_skips(session_world):
    from recbench.errors import ConfigError

    ds, split = session_world
    with pytest.raises(ConfigError, match="input_skips"):
        _run(ds, split, "sasrec", skip_summary=True, input_skips=True, max_epochs=1)


def _info_nce(q, p, negs, t=1.0):
    """-log(e^(q.p/t) / (e^(q.p/t) + sum_n e^(q.n/t))), written out."""
    pos = float(q @ p) / t
    neg = [float(q @ n) / t for n in negs]
    return -math.log(math.exp(pos) / (math.exp(pos) + sum(math.exp(v) for v in neg)))


def test_state_term_by_hand():
    """Seed 004's code form: each played input's state against the FIRST later played
    input's state of its session (positive) and the session's skipped inputs' states
    (negatives, earlier or later); queries without a later played input in their session,
    pads and other sessions' skips left out; rows of the batch kept apart. Checked against
    the formula written out per query."""
    from recbench_builtin.sequential._train import state_term

    torch.manual_seed(0)
    h = torch.randn(2, 7, 3)
    x = torch.tensor([[1, 9, 2, 3, 8, 4, -1], [1, 9, 2, 3, 8, 4, 7]])
    k = torch.tensor([[0, 1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0, 1]], dtype=torch.bool)
    sess = torch.tensor([[0, 0, 0, 1, 1, 1, -2], [0, 0, 0, 1, 1, 1, 1]])
    # row 0: queries 0 (positive 2, negative 1) and 3 (positive 5, negative 4); 2 and 5
    # have no later played input of their session. Row 1: session 0 has no skip (its
    # queries drop out); query 3's later played inputs are 5 only (4 and 6 skipped: both
    # negatives, 6 after the positive); query 5 has none.
    want = [(0, 0, 2, [1]), (0, 3, 5, [4]), (1, 3, 5, [4, 6])]
    for t in (1.0, 0.5):
        loss = SkipContrastiveLoss(temperature=t)
        exp = [_info_nce(h[r, q], h[r, p], [h[r, n] for n in ns], t) for r, q, p, ns in want]
        assert float(state_term(loss, h, x, k, sess)) == pytest.approx(np.mean(exp), abs=1e-5)
    # two later played inputs: the first is the positive, not the last
    k3 = torch.tensor([[0, 1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    s3 = torch.zeros(1, 7, dtype=torch.long)
    got = float(state_term(SkipContrastiveLoss(), h[1:], x[1:], k3, s3))
    exp = [_info_nce(h[1, q], h[1, q + 1 if q else 2], [h[1, 1]]) for q in (0, 2, 3, 4, 5)]
    assert got == pytest.approx(np.mean(exp), abs=1e-5)
    cos = SkipContrastiveLoss(similarity="cosine")
    hn = torch.nn.functional.normalize(h, dim=-1)
    exp = [_info_nce(hn[r, q], hn[r, p], [hn[r, n] for n in ns]) for r, q, p, ns in want]
    assert float(state_term(cos, h, x, k, sess)) == pytest.approx(np.mean(exp), abs=1e-5)


@pytest.mark.parametrize("flags", [True, False])
def test_step_adds_the_state_term_of_its_windows(flags):
    """_step with skip_form = "states": the skip part it reports is the state term of the
    window's inputs, their skip flags and their own sessions (by hand, on the net's
    states), read with the flag embedding only when skip_flags is on."""
    reg = default_registry()
    model = reg.create("recommender", "sasrec", max_len=8, dim=8, dropout=0.0,
                       input_skips=True, skip_flags=flags, skip_form="states",
                       skip_loss="skip-contrastive", skip_weight=0.5)
    torch.manual_seed(0)
    model.net, model._device = build_net(12, model.options, "transformer"), "cpu"
    torch.nn.init.normal_(model.net.skip.weight, std=3.0)  # flags matter when read
    songs = np.array([1, 9, 2, 3, 8, 4, 5])
    skipped = np.array([0, 1, 0, 0, 1, 0, 0], bool)
    windows = model._windows([(songs, skipped)], [np.array([0, 0, 0, 1, 1, 1, 1])])

    class Still:
        def zero_grad(self):
            pass

        def step(self):
            pass

    _, skip = model._step(windows, np.array([0]), reg.create("loss", "skip-contrastive"),
                          Still())
    x = torch.tensor([[1, 9, 2, 3, 8, 4, -1, -1]])
    flag = torch.tensor([[0, 1, 0, 0, 1, 0, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        h = model.net(x, flag if flags else None)[0]
    # queries 0 (positive 2, negative 1) and 3 (positive 5, negative 4)
    exp = np.mean([_info_nce(h[0], h[2], [h[1]]), _info_nce(h[3], h[5], [h[4]])])
    assert skip == pytest.approx(exp, abs=1e-5)
    with torch.no_grad():
        other = model.net(x, None if flags else flag)[0]
    assert abs(_info_nce(other[0], other[2], [other[1]]) - _info_nce(h[0], h[2], [h[1]])) > 1e-4


def test_states_form_needs_input_skips(session_world):
    from recbench.errors import ConfigError

    ds, split = session_world
    with pytest.raises(ConfigError, match="input_skips"):
        _run(ds, split, "sasrec", skip_form="states", skip_loss="skip-contrastive",
             max_epochs=1)
    with pytest.raises(ConfigError, match="pairwise"):
        _run(ds, split, "sasrec", skip_form="states", input_skips=True, max_epochs=1)


def test_skip_flags_off_reads_skipped_tracks_unmarked():
    """input_skips with skip_flags = false: the skipped tracks take positions (the
    history differs from the plays alone) but the net is not told which were skipped
    (flipping the flags changes nothing); with flags it is (the check can fail)."""
    reg = default_registry()
    songs = np.array([3, 20, 4, 5, 21])
    flipped = np.array([0, 1, 0, 0, 1], bool)
    out = {}
    for flags in (True, False):
        model = reg.create("recommender", "sasrec", max_len=6, dim=8, dropout=0.0,
                           input_skips=True, skip_flags=flags)
        torch.manual_seed(0)
        model.net, model._device, model._scorer = (build_net(30, model.options,
                                                             "transformer").eval(),
                                                   torch.device("cpu"), None)
        torch.nn.init.normal_(model.net.skip.weight)
        a = model.represent([(songs, flipped)])
        b = model.represent([(songs, ~flipped)])
        plays = model.represent([(songs[~flipped], flipped[~flipped])])
        out[flags] = (np.abs(a - b).max(), np.abs(a - plays).max())
    assert out[True][0] > 1e-4 and out[False][0] < 1e-9
    assert out[False][1] > 1e-4
