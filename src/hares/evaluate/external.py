"""External encoders under the evaluation contract: HEAR 2021 modules, Hugging Face models, Python factories.

- `hear:MODULE[:WEIGHTS]`: a module with the HEAR 2021 API (`load_model(path)`, `get_scene_embeddings(audio, model)`,
  `get_timestamp_embeddings(audio, model)`, `model.sample_rate`, `model.scene_embedding_size`,
  `model.timestamp_embedding_size`; https://hearbenchmark.com/hear-api.html). hares decodes every task at
  16 kHz (docs/PROTOCOL.md section 1); a module at another rate gets those windows resampled with soxr (HQ), so every
  encoder sees the same information. Its scene embedding is used as is (no hares pooling).
- `hf:PATH_OR_ID[@layer=K | @layers=all]`: a `transformers` audio encoder (wav2vec 2.0, HuBERT, WavLM,
  data2vec-audio, AST, the Whisper encoder, ...) from a folder written by `save_pretrained` or from the local
  Hugging Face cache, never from the network (`local_files_only=True`). Inputs go through the model's own
  feature extractor; the embedding is the time-average of the last hidden state, or of hidden state K
  (0 = the input embeddings, L = the last layer), or of every hidden state (`@layers=all`).
- `py:MODULE:FACTORY`: `FACTORY()` (a callable in an importable module or in a `.py` file) returns an
  `nn.Module` mapping (B, N) 16 kHz waveforms to (B, D), or to (B, T, D), which is averaged over T.

Every kind is loaded under `torch.manual_seed(0)` (weights a loader leaves random are then reproducible) and its
fingerprint covers the module name, version and source hash, the options, a sha256 of every weights file and
a content hash of the loaded weights. The first call is checked at load time on one second of noise, so a
module that breaks the contract fails before any audio is decoded, with a message naming the rule.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import soxr
import torch
from torch import nn

from hares.evaluate.encoders import EncoderInfo, file_sha256, files_sha256, split_options

HEAR_SAMPLE_RATES = (16000, 22050, 32000, 44100, 48000)
HEAR_FUNCTIONS = ("load_model", "get_scene_embeddings", "get_timestamp_embeddings")
SAMPLE_RATE = 16000


class EncoderContractError(ValueError):
    """An external model that does not follow its API; the message names the model and the rule broken."""


def _resample(wav: np.ndarray, rate: int) -> np.ndarray:
    """(B, N) float32 at 16 kHz -> (B, N') at `rate`, soxr HQ (as every decode in hares)."""
    if rate == SAMPLE_RATE:
        return wav
    return np.ascontiguousarray(soxr.resample(wav.T, SAMPLE_RATE, rate, quality="HQ").T, dtype=np.float32)


def _state_hash(model: Any) -> str:
    from hares.models import state_dict_hash

    return state_dict_hash(model) if isinstance(model, nn.Module) else "none"


def _seeded(fn, *args, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return fn(*args, **kwargs)


def _import(name: str, what: str) -> ModuleType:
    """Import a module by dotted name, or a `.py` file by path; errors name the spec."""
    try:
        if name.endswith(".py"):
            path = Path(name)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such file")
            mod_name = f"hares_user_{path.stem}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(name)
    except Exception as e:
        raise EncoderContractError(
            f"{what}: cannot import {name!r} ({type(e).__name__}: {e}); install it or put it on PYTHONPATH"
        ) from e


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()  # scans every installed distribution: once per process


def module_version(module: ModuleType) -> str | None:
    """The installed distribution's version of a module's top-level package, or None (a local module)."""
    from importlib.metadata import PackageNotFoundError, version

    top = module.__name__.split(".")[0]
    for dist in _distributions().get(top, []):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return getattr(module, "__version__", None)


def _source_hash(module: ModuleType) -> dict[str, str]:
    path = getattr(module, "__file__", None)
    return {f"source:{Path(path).name}": file_sha256(path)} if path and Path(path).is_file() else {}


def _device_of(model: Any) -> torch.device:
    if isinstance(model, nn.Module):
        for t in (*model.parameters(), *model.buffers()):
            return t.device
    return torch.device("cpu")


def _as_float32_tensor(x: Any, what: str) -> torch.Tensor:
    """A torch / numpy / TF float32 array -> torch tensor; any other dtype breaks the HEAR rule."""
    if not isinstance(x, torch.Tensor):
        if hasattr(x, "numpy"):  # tf.Tensor
            x = x.numpy()
        if not isinstance(x, np.ndarray):
            raise EncoderContractError(f"{what} returned {type(x).__name__}, not a tensor or array")
        x = torch.from_numpy(x)
    if x.dtype != torch.float32:
        raise EncoderContractError(f"{what} returned dtype {x.dtype}; the HEAR API requires float32")
    return x


class HearEncoder(nn.Module):
    """A HEAR 2021 module: 16 kHz windows -> soxr to the module's rate -> `get_scene_embeddings` (B, D)."""

    sample_rate = SAMPLE_RATE
    frontend = None

    def __init__(self, module: ModuleType, model: Any, info: EncoderInfo) -> None:
        super().__init__()
        self.hear = module
        if isinstance(model, nn.Module):
            self.model = model.eval()
            for p in self.model.parameters():
                p.requires_grad_(False)
        else:  # a TensorFlow module: not a torch submodule, stays where it is
            self.__dict__["model"] = model
        self.model_rate = int(model.sample_rate)
        self.info, self.embed_dim = info, info.embed_dim

    def _audio(self, wav: np.ndarray) -> Any:
        if isinstance(self.model, nn.Module):
            return torch.from_numpy(wav).to(_device_of(self.model))
        import tensorflow as tf  # only a TF model gets here

        return tf.convert_to_tensor(wav)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        audio = self._audio(_resample(wav.detach().float().cpu().numpy(), self.model_rate))  # (B, N')
        emb = self.hear.get_scene_embeddings(audio, self.model)
        what = f"{self.info.spec}: get_scene_embeddings"
        emb = _as_float32_tensor(emb, what)
        if tuple(emb.shape) != (wav.shape[0], self.embed_dim):
            raise EncoderContractError(
                f"{what} returned shape {tuple(emb.shape)} for a batch of {wav.shape[0]}; expected "
                f"({wav.shape[0]}, {self.embed_dim}) = (batch, model.scene_embedding_size)"
            )
        return emb.to(wav.device)


def load_hear(label: str, spec: str, target: str) -> HearEncoder:
    name, _, weights = target.partition(":")
    module = _import(name, spec)
    missing = [f for f in HEAR_FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise EncoderContractError(f"{spec}: module {name!r} lacks the HEAR function(s) {missing}")
    if weights and not Path(weights).exists():
        raise FileNotFoundError(f"{spec}: weights {weights} not found")
    try:
        model = _seeded(module.load_model, weights) if weights else _seeded(module.load_model)
    except Exception as e:
        raise EncoderContractError(f"{spec}: load_model({weights!r}) failed: {type(e).__name__}: {e}") from e
    for attr in ("sample_rate", "scene_embedding_size", "timestamp_embedding_size"):
        value = getattr(model, attr, None)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise EncoderContractError(f"{spec}: model.{attr} must be a positive int, got {value!r}")
    if model.sample_rate not in HEAR_SAMPLE_RATES:
        raise EncoderContractError(f"{spec}: model.sample_rate {model.sample_rate} is not one of {HEAR_SAMPLE_RATES}")
    files = {**_source_hash(module), **({f"weights:{k}": v for k, v in files_sha256(weights).items()} if weights
                                         else {})}  # fmt: skip
    info = EncoderInfo(
        label, spec, "hear", type(model).__name__, {}, _state_hash(model), int(model.scene_embedding_size),
        checkpoint=str(Path(weights).resolve()) if weights else None, input_kind="waveform", module=name,
        module_version=module_version(module), files=files,
        options={"sample_rate": model.sample_rate, "timestamp_embedding_size": model.timestamp_embedding_size},
    )  # fmt: skip
    encoder = HearEncoder(module, model, info)
    encoder(torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 0.5, (2, SAMPLE_RATE)).astype(np.float32)))
    return encoder


class HFEncoder(nn.Module):
    """A `transformers` audio model: its feature extractor, then the time-average of hidden states."""

    sample_rate = SAMPLE_RATE
    frontend = None

    def __init__(self, model: nn.Module, extractor: Any, info: EncoderInfo, layer: int | None, all_layers: bool):
        super().__init__()
        self.model = model.eval().float()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.extractor = extractor
        self.model_rate = int(getattr(extractor, "sampling_rate", SAMPLE_RATE))
        self.layer, self.all_layers = layer, all_layers
        self.whisper = getattr(model.config, "model_type", "") == "whisper"
        self.final_norm = False  # set at load: does last_hidden_state differ from the last hidden state?
        self.info, self.embed_dim = info, info.embed_dim

    def hidden_states(self, wav: torch.Tensor) -> list[torch.Tensor]:
        """All hidden states (L + 1) x (B, T, D), valid frames only, then `last_hidden_state` where it differs
        from the last of them (a final norm); the last entry is always the last hidden state."""
        x = _resample(wav.detach().float().cpu().numpy(), self.model_rate)
        inputs = self.extractor(list(x), sampling_rate=self.model_rate, return_tensors="pt")
        device = _device_of(self.model)
        inputs = {k: v.to(device) for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        out = self.model(**inputs, output_hidden_states=True)
        states = list(out.hidden_states)
        if self.final_norm:  # AST / ViT-style models norm the last layer after the hidden states are taken
            states.append(out.last_hidden_state)
        if self.whisper:  # the extractor pads to 30 s: keep the frames of the audio (2 mel hops per frame)
            valid = -(-x.shape[1] // (2 * int(self.extractor.hop_length)))
            states = [h[:, :valid] for h in states]
        return states

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        states = self.hidden_states(wav)
        if self.all_layers:
            return torch.cat([h.float().mean(dim=1) for h in states], dim=-1).to(wav.device)  # (B, (L+1) D)
        h = states[-1] if self.layer is None else states[self.layer]
        return h.float().mean(dim=1).to(wav.device)  # (B, D)


def _hf_folder(target: str, spec: str) -> Path:
    if Path(target).is_dir():
        return Path(target)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(target, local_files_only=True))
    except Exception as e:
        raise FileNotFoundError(
            f"{spec}: no folder {target!r} and no local Hugging Face cache entry for it ({type(e).__name__}); "
            f"hares evaluates offline: download it first (huggingface-cli download {target}) or pass the folder "
            "written by save_pretrained"
        ) from e


def load_hf(label: str, spec: str, target: str, options: dict[str, str]) -> HFEncoder:
    unknown = sorted(set(options) - {"layer", "layers"})
    if unknown or options.get("layers", "all") != "all" or len(options) > 1:
        raise ValueError(f"encoder {spec!r}: options are @layer=K or @layers=all, got {options}")
    try:
        import transformers
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel
    except ImportError as e:
        raise ImportError(f"{spec}: needs transformers: pip install 'hares[hf]'") from e
    folder = _hf_folder(target, spec)
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        extractor = AutoFeatureExtractor.from_pretrained(folder, local_files_only=True)
        model = _seeded(AutoModel.from_pretrained, folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{spec}: cannot load {folder} with transformers: {e}") from e
    if getattr(config, "is_encoder_decoder", False):
        model = model.get_encoder()
    num_layers = getattr(config, "num_hidden_layers", None) or getattr(config, "encoder_layers", None)
    layer = None
    if "layer" in options:
        try:
            layer = int(options["layer"])
        except ValueError:
            raise ValueError(f"encoder {spec!r}: layer={options['layer']!r} is not an integer") from None
        if num_layers is not None and not -num_layers - 1 <= layer <= num_layers:
            raise ValueError(f"encoder {spec!r}: layer {layer} outside 0..{num_layers} (0 = input embeddings)")
    all_layers = options.get("layers") == "all"
    info = EncoderInfo(
        label, spec, "hf", type(model).__name__, config.to_dict(), _state_hash(model), 0,
        checkpoint=str(folder.resolve()), input_kind="waveform", module="transformers",
        module_version=transformers.__version__, files=files_sha256(folder),
        options={k: v for k, v in options.items()},
    )  # fmt: skip
    encoder = HFEncoder(model, extractor, info, layer, all_layers)
    with torch.no_grad():
        noise = torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 0.5, (1, SAMPLE_RATE)).astype(np.float32))
        states = encoder.hidden_states(noise)
        last = _seeded(lambda: model(**_first_inputs(encoder, noise)).last_hidden_state)
    encoder.final_norm = not torch.allclose(states[-1].float(), last[:, : states[-1].shape[1]].float())
    if encoder.final_norm:
        states.append(last)
    info.options["final_norm"] = encoder.final_norm
    dims = [h.shape[-1] for h in states]
    if all_layers:
        names = [f"layer{i}" for i in range(len(states) - encoder.final_norm)] + ["last"] * encoder.final_norm
        encoder.layers, start = [], 0
        for n, d in zip(names, dims):
            encoder.layers.append((n, slice(start, start + d)))
            start += d
        info.layers, info.embed_dim = names, start
    else:
        info.embed_dim = dims[-1] if layer is None else dims[layer]
    encoder.embed_dim = info.embed_dim
    return encoder


def _first_inputs(encoder: HFEncoder, wav: torch.Tensor) -> dict[str, torch.Tensor]:
    x = _resample(wav.numpy(), encoder.model_rate)
    inputs = encoder.extractor(list(x), sampling_rate=encoder.model_rate, return_tensors="pt")
    return {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}


class PyEncoder(nn.Module):
    """`FACTORY()`'s module: (B, N) -> (B, D), or (B, T, D) averaged over T."""

    sample_rate = SAMPLE_RATE
    frontend = None

    def __init__(self, model: nn.Module, info: EncoderInfo) -> None:
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.info, self.embed_dim = info, info.embed_dim

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        out = self.model(wav.to(_device_of(self.model)))
        what = f"{self.info.spec}: the module"
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            raise EncoderContractError(f"{what} returned {type(out).__name__}, not a floating-point tensor")
        if out.ndim == 3:
            out = out.mean(dim=1)  # (B, T, D) -> (B, D)
        if out.ndim != 2 or out.shape[0] != wav.shape[0]:
            raise EncoderContractError(
                f"{what} returned shape {tuple(out.shape)} for {tuple(wav.shape)} waveforms; "
                "expected (B, D) or (B, T, D)"
            )
        return out.float().to(wav.device)


def load_py(label: str, spec: str, target: str) -> PyEncoder:
    name, sep, factory_name = target.rpartition(":")
    if not sep or not name or not factory_name:
        raise ValueError(f"encoder {spec!r}: expected py:MODULE:FACTORY (MODULE a dotted name or a .py file)")
    module = _import(name, spec)
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise EncoderContractError(f"{spec}: {name!r} has no callable {factory_name!r}")
    model = _seeded(factory)
    if not isinstance(model, nn.Module):
        raise EncoderContractError(f"{spec}: {factory_name}() returned {type(model).__name__}, not a torch.nn.Module")
    info = EncoderInfo(
        label, spec, "py", type(model).__name__, {"factory": factory_name}, _state_hash(model), 0,
        input_kind="waveform", module=name, module_version=module_version(module), files=_source_hash(module),
    )  # fmt: skip
    encoder = PyEncoder(model, info)
    probe = encoder(torch.zeros(2, SAMPLE_RATE))
    encoder.embed_dim = info.embed_dim = int(probe.shape[1])
    return encoder


def load(label: str, spec: str) -> nn.Module:
    """Build a `hear:`, `hf:` or `py:` encoder (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    base, options = split_options(rest)
    if not base:
        raise ValueError(f"encoder {spec!r}: nothing after {kind}:")
    if kind == "hf":
        return load_hf(label, spec, base, options)
    if options:
        raise ValueError(f"encoder {spec!r}: {kind}: takes no @options (per-layer probes: hares networks and hf:)")
    if kind == "hear":
        return load_hear(label, spec, base)
    if kind == "py":
        return load_py(label, spec, base)
    raise ValueError(f"encoder {spec!r}: unknown kind {kind!r}")
