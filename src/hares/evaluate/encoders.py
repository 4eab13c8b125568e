"""Frozen encoders for evaluation: 16 kHz mono waveforms (B, N) -> scene embeddings (B, D).

The one contract every encoder meets (`EvalEncoder`, interface I1 of the project) and the spec strings that
build one (`load_encoder("[LABEL=]SPEC")`; LABEL names it in the report):

- `NAME:PATH.safetensors` (or just `PATH.safetensors`, the name read from its metadata): a trained hares network;
- `random:NAME` (or `random:NAME@SEED`): the network with seeded random weights (seed 0 unless given);
- `logmel`: the classic baseline, mean and std over time of the log-mel (2 x 80 = 160-d);
- `hear:MODULE[:WEIGHTS]`: any module following the HEAR 2021 API (`hares.evaluate.external`);
- `hf:PATH_OR_ID`: a Hugging Face `transformers` audio encoder, offline (`hares.evaluate.external`);
- `py:MODULE:FACTORY`: a Python callable returning an `nn.Module` (B, N) -> (B, D) or (B, T, D).

Options follow the spec after `@`: `@layers=all` (every stage / hidden layer, one extraction, probed per layer)
for hares networks and `hf:`; `@layer=K` (one hidden layer) for `hf:`. `random:NAME@SEED@layers=all` works.

Native networks declare their input with a class attribute `input_kind`: `"logmel"` (the default; the encoder
owns the shared log-mel frontend, so the waveform -> embedding composition happens here and nowhere else) or
`"waveform"` (the network takes the (B, N) waveform itself; the encoder has `frontend = None`).

`EncoderInfo.fingerprint()` hashes everything that determines the embeddings of a window: the kind, the network
or module and its version, the options, the weights (a content hash of the loaded weights and a sha256 of every
weights file an external encoder reads), the frontend and the precision. The embedding cache keys on it, so a
retrained model never reuses stale embeddings (HEAR's runner keys its cache on the module name only).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from hares.audio import FRONTEND_CONFIG, LogMel

DEFAULT_RANDOM_SEED = 0
INPUT_KINDS = ("logmel", "waveform")
EXTERNAL_KINDS = ("hear", "hf", "py")


@dataclass
class EncoderInfo:
    """What the report records about an encoder (provenance) and what its fingerprint hashes.

    kind: "checkpoint" | "random" | "logmel" | "hear" | "hf" | "py".
    network: the hares network name, or the external model's class name.
    module / module_version: the Python module (hear:, py:) or library (hf: transformers) and its version.
    options: everything else that changes the embeddings (layer choice, the module's sample rate, ...).
    files: sha256 of every weights / config file read, by path relative to the weights location.
    layers: the layer names of a per-layer encoder (`@layers=all`), in column order.
    """

    label: str
    spec: str
    kind: str
    network: str | None
    config: dict[str, Any]
    weights_hash: str
    embed_dim: int
    seed: int | None = None
    checkpoint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    input_kind: str = "logmel"
    module: str | None = None
    module_version: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    precision: str = "float32"
    layers: list[str] | None = None

    def fingerprint(self) -> str:
        """sha256 over everything that determines the embeddings (not the label, spec text or file locations)."""
        blob = json.dumps(
            {
                "kind": self.kind,
                "network": self.network,
                "config": self.config,
                "weights": self.weights_hash,
                "input_kind": self.input_kind,
                "module": self.module,
                "module_version": self.module_version,
                "options": self.options,
                "files": self.files,
                "precision": self.precision,
                "layers": self.layers,
                "frontend": FRONTEND_CONFIG if self.input_kind == "logmel" else None,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


@runtime_checkable
class EvalEncoder(Protocol):
    """The evaluation encoder contract (checked, not inherited).

    - `forward(wav (B, N) float32, 16 kHz mono) -> (B, D) float32`, without gradients, in eval mode;
    - `frontend`: the log-mel module when the network reads log-mels (then `embed_logmel(logmel (B, 1, T, F))`
      exists and `forward(wav) == embed_logmel(frontend(wav))`, so the pipeline may compute log-mels elsewhere),
      else None (waveform encoders: hear:, hf:, py:, native waveform networks);
    - optional `layers: list[(name, slice)]`: `forward` returns all layers' embeddings concatenated and each
      entry names a layer and its columns;
    - optional `window_s` (the clip window, default the protocol's 10.24 s) and
      `forward_frames(wav) -> ((B, T, D), timestamps_ms (T,))`.
    """

    info: EncoderInfo
    embed_dim: int
    sample_rate: int
    frontend: nn.Module | None

    def __call__(self, wav: torch.Tensor) -> torch.Tensor: ...


class LogMelStats(nn.Module):
    """The `logmel` baseline network: log-mels (B, 1, T, F) -> concat(mean over T, std over T) (B, 2F)."""

    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        self.embed_dim = 2 * n_mels

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = logmel[:, 0]  # (B, T, F)
        return torch.cat([x.mean(dim=1), x.std(dim=1, unbiased=False)], dim=-1)  # (B, 2F)


def input_kind(network: nn.Module) -> str:
    """The network's declared input ("logmel" unless its class says `input_kind = "waveform"`)."""
    kind = getattr(network, "input_kind", "logmel")
    if kind not in INPUT_KINDS:
        raise ValueError(f"network {type(network).__name__}: input_kind {kind!r} is not one of {INPUT_KINDS}")
    return kind


def network_layers(network: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every stage's pooled embedding, in depth order: {name: (B, D_l)}.

    A network exposes its stages with `forward_layers(x) -> {name: (B, D_l)}` (the last entry is its usual
    embedding); timm networks without it use timm's `forward_intermediates` (each stage averaged over time and
    frequency, then the pooled embedding as "final").
    """
    if hasattr(network, "forward_layers"):
        return dict(network.forward_layers(x))
    timm_net = getattr(network, "net", None)
    if timm_net is not None and hasattr(timm_net, "forward_intermediates"):
        maps = timm_net.forward_intermediates(x, intermediates_only=True)  # [(B, C_l, H_l, W_l)]
        out = {f"stage{i + 1}": m.mean(dim=(2, 3)) for i, m in enumerate(maps)}
        out["final"] = network(x)
        return out
    raise ValueError(
        f"network {getattr(network, 'hares_name', type(network).__name__)!r} does not expose its layers "
        "(no forward_layers method), so @layers=all is not available for it"
    )


class Encoder(nn.Module):
    """A hares network (or the `logmel` statistics) under the evaluation contract.

    Log-mel networks: `forward(wav) = embed_logmel(frontend(wav))`. Waveform networks (`input_kind =
    "waveform"`): `frontend is None` and `forward(wav) = network(wav)`. With `per_layer`, every stage's pooled
    embedding is returned, concatenated, and `layers` names each one's columns.
    """

    sample_rate = 16000

    def __init__(self, network: nn.Module, info: EncoderInfo, per_layer: bool = False) -> None:
        super().__init__()
        info.input_kind = input_kind(network)
        self.frontend = LogMel() if info.input_kind == "logmel" else None
        self.network = network.eval()
        self.per_layer = per_layer
        for p in self.parameters():
            p.requires_grad_(False)
        if per_layer:  # discover the layers and their widths on one second of silence
            with torch.no_grad():
                x = torch.zeros(1, self.sample_rate)
                dims = {k: v.shape[-1] for k, v in network_layers(self.network, self._input(x)).items()}
            self.layers, start = [], 0
            for name, d in dims.items():
                self.layers.append((name, slice(start, start + d)))
                start += d
            info.layers = list(dims)
            info.embed_dim = start
        self.info = info
        self.embed_dim = info.embed_dim

    def _input(self, wav: torch.Tensor) -> torch.Tensor:
        return wav if self.frontend is None else self.frontend(wav)

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_layer:
            return torch.cat([v.float() for v in network_layers(self.network, x).values()], dim=-1)
        return self.network(x).float()

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self._network(self._input(wav))  # (B, D)

    def forward_frames(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) -> frame embeddings (B, T, D') and their centre times in ms (T,), stamped as `hares.hear` does."""
        from hares.hear import HearModel, get_timestamp_embeddings

        if "_hear" not in self.__dict__:  # kept out of the module tree: HearModel holds this encoder
            self.__dict__["_hear"] = HearModel(self)
        frames, times = get_timestamp_embeddings(wav, self.__dict__["_hear"])
        return frames, times[0]

    @torch.no_grad()
    def embed_logmel(self, logmel: torch.Tensor) -> torch.Tensor:
        """The network alone, on log-mels (B, 1, T, F) computed elsewhere (e.g. in decoding workers)."""
        if self.frontend is None:
            raise TypeError(f"encoder {self.info.label!r} takes waveforms (input_kind='waveform'), not log-mels")
        return self._network(logmel)  # (B, D)


def _weights_hash(model: nn.Module) -> str:
    from hares.models import state_dict_hash

    return state_dict_hash(model)


def _embed_dim(model: nn.Module, spec: str) -> int:
    dim = getattr(model, "embed_dim", None)
    if not isinstance(dim, int):
        raise ValueError(f"encoder {spec!r}: network {type(model).__name__} has no integer `embed_dim`")
    return dim


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (memoised per path, size and mtime for this process)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def files_sha256(path: str | os.PathLike) -> dict[str, str]:
    """{relative path: sha256} for a file or every (non-hidden) file under a folder, links followed."""
    p = Path(path)
    if p.is_file():
        return {p.name: file_sha256(p)}
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such file or folder")
    return {str(f.relative_to(p)): file_sha256(f) for f in _walk(p)}


def split_options(spec: str) -> tuple[str, dict[str, str]]:
    """`BASE@key=value@...` -> (BASE, {key: value}); `@` parts without `=` stay in BASE (`random:NAME@SEED`)."""
    parts = spec.split("@")
    base, options = [parts[0]], {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if sep:
            if not key or not value:
                raise ValueError(f"encoder {spec!r}: option {part!r} is not KEY=VALUE")
            options[key] = value
        elif options:
            raise ValueError(f"encoder {spec!r}: {part!r} after the options; put KEY=VALUE options last")
        else:
            base.append(part)
    return "@".join(base), options


def _per_layer(spec: str, options: dict[str, str], allowed: tuple[str, ...] = ("layers",)) -> bool:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"encoder {spec!r}: unknown option(s) {unknown}; allowed here: {list(allowed)}")
    if "layers" in options and options["layers"] != "all":
        raise ValueError(f"encoder {spec!r}: layers={options['layers']!r}; only layers=all is supported")
    return options.get("layers") == "all"


def parse_encoder_arg(arg: str) -> tuple[str, str]:
    """`LABEL=SPEC` -> (LABEL, SPEC); a bare SPEC is labelled by a short form of itself."""
    kind = arg.split(":", 1)[0]
    if "=" in arg and not ("@" in arg and arg.index("@") < arg.index("=")) and kind not in EXTERNAL_KINDS:
        label, spec = arg.split("=", 1)
        if not label or not spec:
            raise ValueError(f"--encoder {arg!r}: expected LABEL=SPEC")
        return label, spec
    base, options = split_options(arg)
    if kind in EXTERNAL_KINDS:  # hf:/long/path/model@layer=3 -> hf:model@layer=3
        head, _, rest = base.partition(":")
        if head == "hf":
            rest = Path(rest).name or rest
        elif head == "hear":
            rest = rest.split(":", 1)[0]
        return f"{head}:{rest}" + "".join(f"@{k}={v}" for k, v in options.items()), arg
    suffix = "".join(f"@{k}={v}" for k, v in options.items())
    if base == "logmel" or base.startswith("random:"):
        return arg, arg
    name, _, path = base.rpartition(":") if ":" in base else ("", "", base)
    return (f"{name}:{Path(path).stem}" if name else Path(path).stem) + suffix, arg


def load_encoder(arg: str) -> nn.Module:
    """Build an evaluation encoder from `[LABEL=]SPEC` (see the module docstring)."""
    label, spec = parse_encoder_arg(arg)
    kind = spec.split(":", 1)[0]
    if kind in EXTERNAL_KINDS:
        from hares.evaluate import external

        return external.load(label, spec)
    base, options = split_options(spec)
    per_layer = _per_layer(spec, options)
    if base == "logmel":
        if per_layer:
            raise ValueError(f"encoder {spec!r}: logmel has no layers")
        net = LogMelStats(FRONTEND_CONFIG["n_mels"])
        info = EncoderInfo(label, spec, "logmel", "logmel", {"stats": ["mean", "std"]}, "none", net.embed_dim)
        return Encoder(net, info)

    from hares.models import create_model, list_models, load_checkpoint

    layer_opts = {"layers": "all"} if per_layer else {}
    if base.startswith("random:"):
        name = base[len("random:") :]
        seed = DEFAULT_RANDOM_SEED
        if "@" in name:
            name, seed_text = name.split("@", 1)
            try:
                seed = int(seed_text)
            except ValueError:
                raise ValueError(f"encoder {spec!r}: seed {seed_text!r} is not an integer") from None
        if name not in list_models():
            raise ValueError(f"encoder {spec!r}: unknown network {name!r}; choose from: {', '.join(list_models())}")
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            net = create_model(name)
        finally:
            torch.random.set_rng_state(state)
        config = dict(getattr(net, "hares_config", {}))
        info = EncoderInfo(label, spec, "random", name, config, _weights_hash(net), _embed_dim(net, spec), seed=seed,
                           options=layer_opts)  # fmt: skip
        return Encoder(net, info, per_layer)

    name, path = base.split(":", 1) if ":" in base and not Path(base).exists() else (None, base)
    if not path.endswith(".safetensors"):
        if base in list_models():
            raise ValueError(f"encoder {spec!r}: a network needs weights: NAME:PATH.safetensors, or random:{base}")
        raise ValueError(
            f"encoder {spec!r}: expected logmel, random:NAME, [NAME:]PATH.safetensors, hear:MODULE[:WEIGHTS], "
            "hf:PATH_OR_ID or py:MODULE:FACTORY"
        )
    net = load_checkpoint(path, name or None)
    config = dict(getattr(net, "hares_config", {}))
    info = EncoderInfo(
        label,
        spec,
        "checkpoint",
        getattr(net, "hares_name", name),
        config,
        _weights_hash(net),
        _embed_dim(net, spec),
        checkpoint=str(Path(path).resolve()),
        options=layer_opts,
    )
    return Encoder(net, info, per_layer)
