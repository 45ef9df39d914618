"""`off-policy`: the value of a model's policy for new users, estimated from a logged policy.

Offline evaluation of a recommendation policy on logged bandit feedback (Li, Chu,
Langford and Wang, WSDM 2011, "Unbiased offline evaluation of contextual-bandit-based news
article recommendation algorithms"; the estimators of Swaminathan and Joachims, NeurIPS
2015, "The self-normalized estimator for counterfactual learning"). Needs a dataset whose
event log records the logging propensities (``events.propensity``; synth-msd:
``log_propensities = true``).

The log: every test user's first `sessions` session(s) (with ``cold-user-k`` and k = 0, a
new user's first contact with the platform). Each event is a slot: the platform showed
track a_j with probability p_j (the propensity), and the reward r_j is 1 when the user
played it, 0 when they skipped it. The model's target policy pi(. | u) over the candidate
songs comes from its scores for the user (`policy`): ``greedy`` (the top song; ties share
its mass), ``softmax`` (``exp(z / temperature)`` of the user's scores standardised over the
candidates, so that one temperature means the same for every model), ``epsilon-greedy``
(greedy with probability 1 - epsilon, uniform otherwise), or ``auto``: the model's own
action distribution (``policy(users, songs)``, the exploration models of
:mod:`recbench_builtin.recommenders.exploration`), else greedy. With w_j = pi(a_j | u_j) /
p_j over the n logged slots:

- ``ips``   = sum_j w_j r_j / n: unbiased for the policy's expected reward per slot
  whenever p_j > 0 wherever pi puts mass (the logger's full support);
- ``snips`` = sum_j w_j r_j / sum_j w_j: self-normalised, a little biased, lower variance;
- ``ess``   = (sum_j w_j)^2 / sum_j w_j^2, the effective sample size (Kish): how many of
  the n slots the estimate is really worth (n when pi is the logger);
- ``true_value`` (synth-msd only; an ORACLE diagnostic, not an estimate): the expected
  reward per slot computed from the simulator's own probabilities, mean over the same slots
  of ``sum_i pi(i | u_j) P(play | slot j, i)`` (:mod:`recbench_builtin.datasets.synth_oracle`),
  so that the board shows whether the estimators find it. There the few events the
  generator added without drawing them (``RewardOracle.drawn``) are left out of the log.

Intervals: percentile bootstrap over users (a user's slots stay together). The diagnostics
give the logging policy's own value (the mean reward of the log) and the bias of each
estimate against the true value. Reward depends only on the slot's user (and, with
``skip_prev_strength``, the logged previous track); a model sees nothing of the session.
The suite's ranking metrics are not used (``ignored_metrics``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import (CellContext, DiagnosticsChart, DiagnosticsTable, MetricInfo,
                                 Task, TaskOutput)
from recbench.errors import DataError
from recbench.params import Param

POLICIES = ("auto", "greedy", "softmax", "epsilon-greedy")
# per-user sums: w r, w, slots, w^2, true value
_WR, _W, _N, _W2, _V = range(5)


def target_policy(scores: np.ndarray, policy: str, temperature: float = 0.25,
                  epsilon: float = 0.1) -> np.ndarray:
    """(U, I) action probabilities (rows sum to 1) from (U, I) scores; see the module."""
    s = np.asarray(scores, dtype=np.float64)
    n = s.shape[1]
    if policy in ("greedy", "epsilon-greedy"):
        top = s == s.max(axis=1, keepdims=True)
        pi = top / top.sum(axis=1, keepdims=True)
        if policy == "epsilon-greedy":
            pi = (1.0 - epsilon) * pi + epsilon / n
        return pi
    if policy == "softmax":
        sd = s.std(axis=1, keepdims=True)
        z = (s - s.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
        e = np.exp((z - z.max(axis=1, keepdims=True)) / temperature)
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown policy {policy!r}: expected one of {POLICIES[1:]}")


def ips_estimates(w: np.ndarray, r: np.ndarray) -> dict[str, float]:
    """IPS, SNIPS and ESS of importance weights `w` (n,) and rewards `r` (n,)."""
    w, r = np.asarray(w, np.float64), np.asarray(r, np.float64)
    sw = w.sum()
    return {"ips": float((w * r).sum() / len(w)) if len(w) else float("nan"),
            "snips": float((w * r).sum() / sw) if sw > 0 else float("nan"),
            "ess": float(sw * sw / (w * w).sum()) if sw > 0 else 0.0}


def _ratio(num: int, den: int):
    def reduce(v: np.ndarray) -> float:
        d = v[:, den].sum()
        return float(v[:, num].sum() / d) if d > 0 else float("nan")
    return reduce


def _ess(v: np.ndarray) -> float:
    d = v[:, _W2].sum()
    return float(v[:, _W].sum() ** 2 / d) if d > 0 else 0.0


REDUCE = {"ips": _ratio(_WR, _N), "snips": _ratio(_WR, _W), "ess": _ess,
          "true_value": _ratio(_V, _N)}
INFO: dict[str, MetricInfo] = {
    "ips": {"label": "IPS estimate (reward per slot)", "higher_is_better": True,
            "description": "inverse propensity scoring: sum w r / n, unbiased",
            "ci_over": "users"},
    "snips": {"label": "SNIPS estimate (reward per slot)", "higher_is_better": True,
              "description": "self-normalised IPS: sum w r / sum w", "ci_over": "users"},
    "ess": {"label": "Effective sample size (slots)", "higher_is_better": True,
            "description": "(sum w)^2 / sum w^2: slots the estimate is worth",
            "ci_over": "users"},
    "true_value": {"label": "True value [oracle: simulator]", "higher_is_better": True,
                   "description": "ORACLE diagnostic: expected reward per slot from the "
                                  "simulator's play probabilities (not an estimate)",
                   "ci_over": "users"},
}


class OffPolicyTask(Task):
    """IPS / SNIPS value of a model's policy on new users' logged first sessions."""

    name = "off-policy"
    description = ("Offline value of the model's policy on logged new-user sessions: IPS, "
                   "SNIPS, effective sample size (and the true value on synthetic data)")
    default_metrics = ()
    primary_metric = "snips"
    params = (
        Param("sessions", int, 1, "first sessions of each test user used as the log", min=1),
        Param("policy", str, "auto", "the target policy from the model: auto (the model's "
              "own when it has one, else greedy), greedy, softmax, epsilon-greedy",
              choices=POLICIES),
        Param("temperature", float, 0.25, "softmax temperature on standardised scores",
              min=1e-6),
        Param("epsilon", float, 0.1, "epsilon-greedy: share of uniform exploration",
              min=0.0, max=1.0),
        Param("candidates", str, "all", "songs the policy chooses from: all, or those with "
              "training plays", choices=("all", "train")),
        Param("oracle", bool, True, "the true value from the simulator (synth-msd only)"),
    )

    def _log(self, ctx: CellContext, drawn: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray]:
        """(users, slot event indices per user): the test users' first sessions (only the
        events the logging policy drew, when `drawn` says which)."""
        ev = ctx.dataset.events
        users, slots = [], []
        for u in np.asarray(ctx.split.test_users, dtype=np.int64):
            s = ev.sessions_of(int(u))[:self.options["sessions"]]
            idx = np.concatenate(s) if s else np.zeros(0, np.int64)
            if drawn is not None:
                idx = idx[drawn[idx]]
            if len(idx):
                users.append(u)
                slots.append(idx)
        if not users:
            raise DataError("task off-policy: no test user has a logged session")
        return np.asarray(users, np.int64), np.asarray(slots, dtype=object)

    def _policy(self, ctx: CellContext, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        o, model = self.options, ctx.model
        if o["policy"] == "auto" and callable(getattr(model, "policy", None)):
            return np.asarray(model.policy(users, songs), dtype=np.float64)
        name = "greedy" if o["policy"] == "auto" else o["policy"]
        return target_policy(model.score(users, songs), name, o["temperature"], o["epsilon"])

    def run(self, ctx: CellContext) -> TaskOutput:
        from recbench.uncertainty import bootstrap_ci

        t0 = time.perf_counter()
        ev, o = ctx.dataset.events, self.options
        if ev is None or ev.propensity is None:
            raise DataError(f"task off-policy: dataset {ctx.dataset.name!r} has no logging "
                            f"propensities (events.propensity); synth-msd: set "
                            f"log_propensities = true with skip_strength")
        oracle = None
        if o["oracle"]:
            from recbench_builtin.datasets import synth_oracle

            if synth_oracle.supports(ctx.dataset):
                oracle = synth_oracle.RewardOracle(ctx.dataset)
        users, slots = self._log(ctx, None if oracle is None else oracle.drawn)
        songs = (np.arange(ctx.dataset.n_songs) if o["candidates"] == "all"
                 else np.asarray(ctx.split.train_songs, dtype=np.int64))
        col = np.full(ctx.dataset.n_songs, -1)
        col[songs] = np.arange(len(songs))
        sums = np.zeros((len(users), 5))
        score_s, w_max = 0.0, 0.0
        for start in range(0, len(users), ctx.chunk_users):
            block = slice(start, start + ctx.chunk_users)
            t1 = time.perf_counter()
            pi = self._policy(ctx, users[block], songs)
            score_s += time.perf_counter() - t1
            for k, idx in enumerate(slots[block]):
                c = col[ev.song[idx]]
                w = np.where(c >= 0, pi[k, np.maximum(c, 0)], 0.0) / ev.propensity[idx]
                r = (~ev.skipped[idx]).astype(np.float64)
                w_max = max(w_max, float(w.max()))
                row = sums[start + k]
                row[_WR], row[_W], row[_N], row[_W2] = (w * r).sum(), w.sum(), len(idx), \
                    (w * w).sum()
                if oracle is not None:
                    row[_V] = float((oracle.play_probability(idx, songs) @ pi[k]).sum())
        cols = ["ips", "snips", "ess"] + (["true_value"] if oracle is not None else [])
        metrics = {c: REDUCE[c](sums) for c in cols}
        cis: dict[str, list[float | None]] = {}
        for i, c in enumerate(cols):
            cis[c] = (list(bootstrap_ci(sums, reduce=REDUCE[c], n_resamples=ctx.bootstrap,
                                        seed=ctx.seed * 1000 + i, level=ctx.confidence))
                      if ctx.bootstrap else [None, None])
        info = {c: MetricInfo(**INFO[c], n_users=len(users), excluded_users=0) for c in cols}
        all_slots = np.concatenate(list(slots))
        n = int(sums[:, _N].sum())
        diag: dict[str, Any] = {
            "n_users": int(len(users)), "n_slots": n, "n_candidates": int(len(songs)),
            "logged_value": float((~ev.skipped[all_slots]).mean()),
            "policy": o["policy"], "oracle": oracle is not None,
            "weight_max": w_max}
        diag["estimates"] = {c: metrics[c] for c in cols if c != "ess"}
        if oracle is not None:
            diag["ips_bias"] = metrics["ips"] - metrics["true_value"]
            diag["snips_bias"] = metrics["snips"] - metrics["true_value"]
        return TaskOutput(
            metrics=metrics, metrics_ci=cis,
            throughput={"policy_users_per_s": len(users) / score_s if score_s > 0
                        else float("nan")},
            timing={"eval_s": round(time.perf_counter() - t0, 4)}, metric_info=info,
            diagnostics=diag, ignored_metrics=[m[0] for m in ctx.metrics])

    @classmethod
    def diagnostics_table(cls, entries: list[dict[str, Any]]) -> DiagnosticsTable | None:
        """Per model: slots, the log's own value, the estimates' bias against the oracle."""
        rows = []
        for e in entries:
            d = e.get("extra") or {}
            if "n_slots" not in d:
                continue
            rows.append([e["label"], d.get("n_users"), d.get("n_slots"),
                         d.get("logged_value"), d.get("weight_max"), d.get("ips_bias"),
                         d.get("snips_bias")])
        if not rows:
            return None
        return DiagnosticsTable(
            caption="**Off-policy diagnostics** (first seed). Slots: the test users' logged "
                    "first-session exposures; logged value: their mean reward under the "
                    "logging policy (the platform); largest weight: max pi / p over the "
                    "slots; bias: estimate minus the oracle's true value (synthetic data "
                    "only). A few effective slots (column ess) make an estimate "
                    "unreliable, whatever its interval says.",
            header=["model", "users", "slots", "logged value", "largest weight",
                    "IPS - true", "SNIPS - true"],
            rows=rows)

    @classmethod
    def diagnostics_chart(cls, entries: list[dict[str, Any]]) -> DiagnosticsChart | None:
        """Per model: IPS, SNIPS and (synthetic data) the oracle's true value, side by side."""
        names = {"ips": "IPS", "snips": "SNIPS", "true_value": "oracle"}
        found = [(e["label"], (e.get("extra") or {}).get("estimates") or {}) for e in entries]
        keys = [k for k in names if any(k in est for _, est in found)]
        if not keys:
            return None
        return DiagnosticsChart(
            title="Estimated vs true value per slot (first seed)", ylabel="reward per slot",
            groups=[names[k] for k in keys],
            series={label: [est.get(k) for k in keys] for label, est in found if est})


@hookimpl
def recbench_register_tasks(register):
    register(OffPolicyTask)
