"""``[dataset.fallback.models.<id>]``: model parameters used under the synthetic fallback."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..registry.params import suggest
from ..registry import Registry
from .locate import _FallbackLocator
from .model import ComponentSpec, _RESERVED_MODEL_KEYS
from .specs import _plugin_spec


def _fallback_model_specs(registry: Registry, overrides: Any, models_t: list[Any],
                          models: list[ComponentSpec], file: str, text: str,
                          from_env: dict[str, str]) -> dict[str, ComponentSpec]:
    """``[dataset.fallback.models.<model id>]``: parameters that replace a model's own when
    the fallback dataset replaces the suite's (e.g. a minutes-long budget for the synthetic
    stand-in, while the main values train to convergence on the real data). Validated like
    the model's own table, whether or not the fallback is used; returns {model id: the
    model's spec with the overrides applied}. The fallback's values win over the model's
    own, ``--set models[i].key=...`` included."""
    if overrides is None:
        return {}
    loc = _FallbackLocator(text)
    key = "dataset.fallback.models"
    if not isinstance(overrides, dict):
        raise ConfigError("expected a table of model ids, e.g. [dataset.fallback.models.dcue]",
                          file=file, key=key, line=loc.line(key))
    ids = [m.id for m in models]
    out = {}
    for mid, values in overrides.items():
        mkey = f"{key}.{mid}"
        if mid not in ids:
            raise ConfigError(f"names no model of this suite.{suggest(mid, ids)} Model ids: "
                              f"{', '.join(ids)}", file=file, key=mkey, line=loc.line(mkey))
        if not isinstance(values, dict):
            raise ConfigError("expected a table of the model's parameters", file=file,
                              key=mkey, line=loc.line(mkey))
        for k in values:
            if k in _RESERVED_MODEL_KEYS:
                raise ConfigError(f"`{k}` cannot change for the fallback (only the model's "
                                  f"parameters can)", file=file, key=f"{mkey}.{k}",
                                  line=loc.line(f"{mkey}.{k}"))
        i = ids.index(mid)
        base = {k: v for k, v in models_t[i].items() if k not in ("id", "label")}
        merged = {**base, **values}
        # errors name the override's table (the model's own values were validated above)
        spec = _plugin_spec(registry, "recommender", merged, mkey, file, loc,
                            reserved=_RESERVED_MODEL_KEYS, from_env=from_env,
                            raw_key=models[i].key)
        spec.key, spec.id, spec.label = models[i].key, models[i].id, models[i].label
        out[mid] = spec
    return out
