"""``hear``: any module implementing the HEAR API as a waveform backbone, frozen or fine-tuned.

The HEAR API (Turian et al., "HEAR: Holistic Evaluation of Audio Representations", NeurIPS
2021 competition; hearbenchmark.com, "Common API") asks a module for
``load_model(model_file_path="")`` returning a model with ``sample_rate`` and
``scene_embedding_size`` attributes, and ``get_scene_embeddings(audio, model)`` mapping
``audio`` (n_sounds x n_samples float32 tensor, mono, in [-1, 1], at ``model.sample_rate``)
to (n_sounds, scene_embedding_size). This backbone wraps one such module: windows
(B, T, 1) of recbench's waveform features -> ``gain`` x samples -> resampled from
``input_rate`` to ``model.sample_rate`` when they differ (soxr, on the CPU; the input
needs no gradient) -> ``get_scene_embeddings`` -> (B, scene_embedding_size).

- ``fine_tune = false`` (default): the model is frozen (eval mode, no gradients; models add
  a trained head where they need one, see ``_training.with_head``).
- ``fine_tune = true``: the model's parameters are trained with the recommender's loss;
  it must be a ``torch.nn.Module`` (a TensorFlow HEAR model cannot be fine-tuned here),
  and its ``get_scene_embeddings`` must not itself disable gradients (the published
  ``hearbaseline`` models run under ``torch.no_grad()``, so they only work frozen).

``module``: a dotted module name (``hearbaseline.naive``) or the path of a ``.py`` file.
recbench's waveform features are standardised over the training songs (unit variance), so
``gain`` (default 0.1) brings them back to a [-1, 1]-like range; ``input_rate`` must be the
suite's ``[features] sample_rate`` (22,050 Hz by default; setting both to the model's rate
avoids resampling).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import Backbone
from recbench.errors import ConfigError
from recbench.params import Param

_WHERE = "backbone.hear"


def load_hear_module(spec: str) -> Any:
    """The HEAR-API module named by `spec` (a dotted name or a .py path); ConfigError when
    it cannot be imported or lacks the API's functions."""
    try:
        if spec.endswith(".py"):
            path = Path(spec).expanduser()
            name = f"recbench_hear_{abs(hash(str(path.resolve())))}"
            if name in sys.modules:
                mod = sys.modules[name]
            else:
                loader_spec = importlib.util.spec_from_file_location(name, path)
                if loader_spec is None or loader_spec.loader is None or not path.is_file():
                    raise ImportError(f"no such file {path}")
                mod = importlib.util.module_from_spec(loader_spec)
                loader_spec.loader.exec_module(mod)
                sys.modules[name] = mod
        else:
            mod = importlib.import_module(spec)
    except Exception as exc:  # noqa: BLE001 - any import failure is a configuration error
        raise ConfigError(f"cannot import HEAR module {spec!r} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})",
                          key=f"{_WHERE}.module") from None
    missing = [f for f in ("load_model", "get_scene_embeddings") if not callable(
        getattr(mod, f, None))]
    if missing:
        raise ConfigError(f"module {spec!r} does not implement the HEAR API: no "
                          f"{', '.join(missing)}()", key=f"{_WHERE}.module")
    return mod


class HearBackbone(Backbone):
    """A HEAR-API module's scene embeddings of waveform windows (see the module docstring)."""

    name = "hear"
    description = "Any HEAR-API module (load_model / get_scene_embeddings) on waveform windows, frozen or fine-tuned"
    input_kind = "waveform"
    learnable = False  # the default (frozen); `fine_tune = true` makes an instance learnable
    params = (
        Param("module", str, required=True,
              help="HEAR-API module: dotted name (e.g. hearbaseline.naive) or .py path"),
        Param("model_file", str, "", help="passed to load_model(model_file_path=...)"),
        Param("fine_tune", bool, False,
              help="train the model's parameters (a torch.nn.Module) with the model's loss"),
        Param("input_rate", int, 22050, min=1,
              help="sample rate of the waveform windows ([features] sample_rate)"),
        Param("gain", float, 0.1, min=0.0,
              help="factor on the standardised waveform before the model (to [-1, 1]-like)"),
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.learnable = bool(self.options["fine_tune"])  # frozen: models add a head

    def _load(self) -> tuple[Any, Any]:
        mod = load_hear_module(self.options["module"])
        try:
            model = mod.load_model(model_file_path=self.options["model_file"])
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"{self.options['module']}.load_model failed "
                              f"({type(exc).__name__}: {exc})", key=f"{_WHERE}.model_file"
                              ) from None
        for attr in ("sample_rate", "scene_embedding_size"):
            if not isinstance(getattr(model, attr, None), (int, np.integer)):
                raise ConfigError(f"the model of {self.options['module']!r} has no integer "
                                  f"{attr!r} attribute (HEAR API)", key=f"{_WHERE}.module")
        return mod, model

    def out_features(self, time_steps: int, channels: int, out_dim: int) -> int:
        """The model's ``scene_embedding_size`` (`out_dim` is ignored)."""
        return int(self._load()[1].scene_embedding_size)

    def build(self, time_steps: int, channels: int, out_dim: int) -> Any:
        """A module mapping (B, time_steps, 1) waveform windows to (B, scene_embedding_size)."""
        import torch
        from torch import nn

        if channels != 1:
            raise ConfigError(f"expects mono waveform windows (1 channel), got {channels}",
                              key=_WHERE)
        mod, model = self._load()
        o = self.options
        fine_tune = bool(o["fine_tune"])
        is_module = isinstance(model, nn.Module)
        if fine_tune and not is_module:
            raise ConfigError(f"fine_tune needs a torch.nn.Module model; "
                              f"{o['module']!r} returns a {type(model).__name__}",
                              key=f"{_WHERE}.fine_tune")
        rate_in, rate_out = int(o["input_rate"]), int(model.sample_rate)
        gain = float(o["gain"])

        class HearNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                if is_module:
                    self.model = model  # registered: .to(device) and .parameters() see it
                    if not fine_tune:
                        model.requires_grad_(False)
                self._plain = None if is_module else model
                self.out_features = int(model.scene_embedding_size)

            def train(self, mode: bool = True):
                super().train(mode)
                if is_module and not fine_tune:
                    self.model.eval()  # frozen: dropout / batch norm stay in inference mode
                return self

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                audio = x[..., 0] * gain
                if rate_in != rate_out:
                    import soxr

                    a = audio.detach().float().cpu().numpy()
                    a = soxr.resample(a.T, rate_in, rate_out).T
                    audio = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)
                                             ).to(x.device)
                m = self.model if is_module else self._plain
                if not is_module:  # numpy / TensorFlow models get CPU tensors
                    audio = audio.cpu()
                if fine_tune:
                    emb = mod.get_scene_embeddings(audio.float(), m)
                else:
                    with torch.no_grad():
                        emb = mod.get_scene_embeddings(audio.float(), m)
                if not isinstance(emb, torch.Tensor):
                    emb = torch.as_tensor(np.asarray(emb), dtype=torch.float32)
                return emb.to(device=x.device, dtype=torch.float32)

        net = HearNet()
        if is_module and not fine_tune:
            net.train(False)
        return net


@hookimpl
def recbench_register_backbones(register):
    register(HearBackbone)
