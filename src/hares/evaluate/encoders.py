"""Frozen encoders for evaluation: waveform windows (B, N) at 16 kHz -> scene embeddings (B, D).

Three kinds, named by a spec string (optionally `LABEL=SPEC` to name it in the report):
- `NAME:PATH.safetensors` (or just `PATH.safetensors`, the name read from its metadata): a trained network;
- `random:NAME` (or `random:NAME@SEED`): the network with seeded random weights (seed 0 unless given);
- `logmel`: the classic baseline, mean and std over time of the log-mel (2 x 80 = 160-d).

Every encoder wraps the shared frontend (`hares.audio.LogMel`), so the waveform -> embedding composition
happens here and nowhere else. `fingerprint` hashes everything that determines the embeddings of a window
(weights, network config, frontend config); the embedding cache keys on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hares.audio import FRONTEND_CONFIG, LogMel

DEFAULT_RANDOM_SEED = 0


@dataclass
class EncoderInfo:
    """What the report records about an encoder (provenance)."""

    label: str
    spec: str
    kind: str  # "checkpoint" | "random" | "logmel"
    network: str | None
    config: dict[str, Any]
    weights_hash: str
    embed_dim: int
    seed: int | None = None
    checkpoint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """sha256 over the weights hash, the network and its config, and the frontend config."""
        blob = json.dumps(
            {
                "kind": self.kind,
                "network": self.network,
                "config": self.config,
                "weights": self.weights_hash,
                "frontend": FRONTEND_CONFIG,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


class LogMelStats(nn.Module):
    """The `logmel` baseline network: log-mels (B, 1, T, F) -> concat(mean over T, std over T) (B, 2F)."""

    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        self.embed_dim = 2 * n_mels

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = logmel[:, 0]  # (B, T, F)
        return torch.cat([x.mean(dim=1), x.std(dim=1, unbiased=False)], dim=-1)  # (B, 2F)


class Encoder(nn.Module):
    """Frontend + frozen network: `forward(wav (B, N)) -> (B, D)`, in eval mode, without gradients."""

    def __init__(self, network: nn.Module, info: EncoderInfo) -> None:
        super().__init__()
        # a waveform network (`input_kind = "waveform"`: CPC, wav2vec 2.0) takes the window itself: no frontend
        waveform = getattr(network, "input_kind", "logmel") == "waveform"
        self.frontend = None if waveform else LogMel()
        self.network = network.eval()
        self.info = info
        self.embed_dim = info.embed_dim
        for p in self.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if self.frontend is None:
            return self.network(wav).float()  # (B, D)
        return self.embed_logmel(self.frontend(wav))  # (B, D)

    @torch.no_grad()
    def embed_logmel(self, logmel: torch.Tensor) -> torch.Tensor:
        """The network alone, on log-mels (B, 1, T, F) computed elsewhere (e.g. in decoding workers)."""
        return self.network(logmel).float()  # (B, D)


def _weights_hash(model: nn.Module) -> str:
    from hares.models import state_dict_hash

    return state_dict_hash(model)


def _embed_dim(model: nn.Module, spec: str) -> int:
    dim = getattr(model, "embed_dim", None)
    if not isinstance(dim, int):
        raise ValueError(f"encoder {spec!r}: network {type(model).__name__} has no integer `embed_dim`")
    return dim


def parse_encoder_arg(arg: str) -> tuple[str, str]:
    """`LABEL=SPEC` -> (LABEL, SPEC); a bare SPEC is labelled by a short form of itself."""
    if "=" in arg:
        label, spec = arg.split("=", 1)
        if not label or not spec:
            raise ValueError(f"--encoder {arg!r}: expected LABEL=SPEC")
        return label, spec
    if arg == "logmel" or arg.startswith("random:"):
        return arg, arg
    name, _, path = arg.rpartition(":") if ":" in arg else ("", "", arg)
    return (f"{name}:{Path(path).stem}" if name else Path(path).stem), arg


def load_encoder(arg: str) -> Encoder:
    """Build an evaluation encoder from `[LABEL=]SPEC` (see the module docstring)."""
    label, spec = parse_encoder_arg(arg)
    if spec == "logmel":
        net = LogMelStats(FRONTEND_CONFIG["n_mels"])
        info = EncoderInfo(label, spec, "logmel", "logmel", {"stats": ["mean", "std"]}, "none", net.embed_dim)
        return Encoder(net, info)

    from hares.models import create_model, list_models, load_checkpoint

    if spec.startswith("random:"):
        name = spec[len("random:") :]
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
        info = EncoderInfo(label, spec, "random", name, config, _weights_hash(net), _embed_dim(net, spec), seed=seed)
        return Encoder(net, info)

    name, path = spec.split(":", 1) if ":" in spec and not Path(spec).exists() else (None, spec)
    if not path.endswith(".safetensors"):
        if spec in list_models():
            raise ValueError(f"encoder {spec!r}: a network needs weights: NAME:PATH.safetensors, or random:{spec}")
        raise ValueError(f"encoder {spec!r}: expected logmel, random:NAME or [NAME:]PATH.safetensors")
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
    )
    return Encoder(net, info)
