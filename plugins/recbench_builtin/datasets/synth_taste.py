"""Users' taste in synth-msd and the mixing helpers every side mechanism draws with (see
synth_side's module docstring for the formulas). Moved out of synth_side.py unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np

def make_taste(seed: int, users: int, world: dict[str, np.ndarray],
               audible_share: float) -> dict[str, Any]:
    """Users' taste: unit audible (u_a) and hidden (u_h) vectors, the songs' unit vectors
    (s_a, s_h) and the weights (w_a, w_h) that make affinity = w_a u_a.s_a + w_h u_h.s_h
    have both parts standardised; `rng` is the user stream, to draw further from."""
    ru = np.random.default_rng([seed, 4])
    fav = ru.integers(len(world["centres"]), size=users)
    n_a, n_h = world["audible"].shape[1], world["hidden"].shape[1]
    u_a = _unit(world["centres"][fav] + 0.8 * ru.normal(size=(users, n_a)))
    u_h = _unit(ru.normal(size=(users, n_h)))
    s_a, s_h = _unit(world["audible"]), _unit(world["hidden"])
    # one scale for every chunk: the spread of each affinity part over a fixed user sample
    probe = np.arange(min(users, 500))
    sd_a = max(float((u_a[probe] @ s_a.T).std()), 1e-6)
    sd_h = max(float((u_h[probe] @ s_h.T).std()), 1e-6)
    return {"rng": ru, "u_a": u_a, "u_h": u_h, "s_a": s_a, "s_h": s_h,
            "w_a": np.sqrt(audible_share) / sd_a, "w_h": np.sqrt(1.0 - audible_share) / sd_h}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)


def mix(signal: np.ndarray, noise: np.ndarray, s: float) -> np.ndarray:
    """sqrt(s) * standardised signal + sqrt(1 - s) * noise (the noise alone at s = 0)."""
    s = float(s)
    if s <= 0.0:
        return noise
    return np.sqrt(s) * _z(signal) + np.sqrt(max(1.0 - s, 0.0)) * noise


def taste_vectors(taste: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(T, S): users x 16 and songs x 16 with T @ S.T the generator's affinity."""
    t = np.c_[taste["w_a"] * taste["u_a"], taste["w_h"] * taste["u_h"]]
    return t, np.c_[taste["s_a"], taste["s_h"]]
