"""hares encoders as HEAR 2021 modules, so heareval and other suites can run them.

    hear-validator hares.hear --model encoder.safetensors

    >>> import hares.hear as hear
    >>> model = hear.load_model("runs/simclr/encoder.safetensors")   # or "NAME:PATH", "random:sf_nfnet_f0"
    >>> scene = hear.get_scene_embeddings(audio, model)               # audio (n, samples) at 16 kHz -> (n, D)
    >>> frames, times_ms = hear.get_timestamp_embeddings(audio, model)  # (n, T, D'), (n, T)

The API (https://hearbenchmark.com/hear-api.html): `load_model(model_file_path)` returns a `torch.nn.Module`
with `sample_rate` (16000), `scene_embedding_size` and `timestamp_embedding_size`; audio is a float32 tensor
(n, samples) of equal-length mono clips in [-1, 1] on the model's device.

- Scene embeddings follow the HARES clip policy (PROTOCOL section 2), exactly what `hares eval` caches: the
  whole clip up to 10.24 s, longer clips in consecutive 10.24 s windows (a last window under 1 s zero-padded to
  1 s) whose embeddings are averaged.
- Timestamp embeddings are the network's frame embeddings (`forward_frames`; the `logmel` baseline's frames are
  the log-mels themselves), computed per 10.24 s window (plus the 240 samples that complete its last log-mel
  frames). A network frame that pools `s` log-mel frames (a
  time stride of `s`, measured once at load) is stamped at the centre of the samples those frames read, in ms
  from the clip start; frames whose centre falls after the clip's end (padding) are dropped. Window starts
  are multiples of `s` frames, so the stamps stay regular across windows.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hares.audio import EVAL_MIN_LAST_S, EVAL_WINDOW_S, HOP_LENGTH, SAMPLE_RATE, WIN_LENGTH, eval_windows, pad_to
from hares.evaluate.embed import frame_exact
from hares.evaluate.encoders import Encoder, load_encoder

PROBE_FRAMES = 256  # log-mel frames of the input used to measure a network's time stride (divides 1024)


class HearModel(nn.Module):
    """A hares encoder with the HEAR model attributes; `get_*_embeddings` below do the work."""

    sample_rate = SAMPLE_RATE

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.scene_embedding_size = int(encoder.embed_dim)
        self.window_s = float(getattr(encoder, "window_s", EVAL_WINDOW_S))
        probe = torch.zeros(1, WIN_LENGTH + (PROBE_FRAMES - 1) * HOP_LENGTH)
        with torch.no_grad():
            frames = self.frames(probe)  # (1, T', D')
        self.timestamp_embedding_size = int(frames.shape[-1])
        if encoder.frontend is not None:  # stride in log-mel frames; stamps at the centre of the frames read
            self.stride = PROBE_FRAMES // frames.shape[1]
            if self.stride * frames.shape[1] != PROBE_FRAMES:
                raise ValueError(f"{encoder.info.label}: {frames.shape[1]} frames for {PROBE_FRAMES} log-mel frames "
                                 "is not a whole stride; cannot place timestamps")  # fmt: skip
            self.first_ms = ((self.stride - 1) / 2 * HOP_LENGTH + WIN_LENGTH / 2) / SAMPLE_RATE * 1000
            self.hop_ms = self.stride * HOP_LENGTH / SAMPLE_RATE * 1000
        else:  # a waveform network: frames tile the samples
            hop = probe.shape[1] / frames.shape[1]
            self.first_ms, self.hop_ms = hop / 2 / SAMPLE_RATE * 1000, hop / SAMPLE_RATE * 1000

    @torch.no_grad()
    def frames(self, wav: torch.Tensor) -> torch.Tensor:
        """(n, N) -> frame embeddings (n, T', D') of one window."""
        enc = self.encoder
        x = wav if enc.frontend is None else enc.frontend(wav)
        if not hasattr(enc.network, "forward_frames"):
            if enc.info.kind == "logmel":
                return x[:, 0].float()  # (n, T, 80): the log-mel frames
            raise ValueError(f"{enc.info.label}: network has no forward_frames, so no timestamp embeddings")
        return enc.network.forward_frames(x).float()

    def windows(self, audio: torch.Tensor, frames: bool = False) -> list[tuple[int, torch.Tensor]]:
        """A batch (n, N) in windows [(start sample, (n, N_w))], trimmed to whole log-mel frames.

        Scene embeddings: the clip policy's windows. Frames (`frames=True`): the same starts, each window
        reaching 240 samples into the next so that it yields every log-mel frame that starts inside it (1024
        per 10.24 s), and the frame grid runs on unbroken across windows.
        """
        if audio.ndim != 2:
            raise ValueError(f"hares.hear: audio must be (n_sounds, n_samples), got shape {tuple(audio.shape)}")
        wav = audio.detach().float().cpu().numpy()
        step = int(round(self.window_s * SAMPLE_RATE))
        if frames:
            wins = [wav[:, s : s + step + WIN_LENGTH - HOP_LENGTH] for s in range(0, wav.shape[1], step)]
            wins[-1] = pad_to(wins[-1], int(EVAL_MIN_LAST_S * SAMPLE_RATE))  # padding frames are dropped later
        else:
            wins = eval_windows(wav, SAMPLE_RATE, self.window_s, EVAL_MIN_LAST_S)
        return [(i * step, torch.from_numpy(np.ascontiguousarray(frame_exact(w))).to(audio.device)) for i, w in
                enumerate(wins)]  # fmt: skip


def load_model(model_file_path: str = "") -> HearModel:
    """A hares checkpoint (`encoder.safetensors`, `NAME:PATH.safetensors`) or any hares encoder spec as a HEAR model."""
    if not model_file_path:
        raise ValueError("hares.hear.load_model needs a hares checkpoint: load_model('encoder.safetensors')")
    encoder = load_encoder(str(model_file_path))
    if not isinstance(encoder, Encoder):
        raise ValueError(f"hares.hear: {model_file_path!r} is not a hares network (hear:/hf:/py: are external)")
    return HearModel(encoder)


@torch.no_grad()
def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """(n, N) float32 at 16 kHz -> (n, scene_embedding_size) float32: the HARES clip policy's embedding."""
    device = _device(model)
    windows = model.windows(audio)
    total = sum(model.encoder(w.to(device)).double() for _, w in windows)
    return (total / len(windows)).float().to(audio.device)


@torch.no_grad()
def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, N) -> frame embeddings (n, T, timestamp_embedding_size) and their centre times in ms (n, T)."""
    device = _device(model)
    clip_ms = audio.shape[1] / SAMPLE_RATE * 1000
    embs, stamps = [], []
    for start, w in model.windows(audio, frames=True):
        frames = model.frames(w.to(device))  # (n, T', D')
        times = start / SAMPLE_RATE * 1000 + model.first_ms + model.hop_ms * torch.arange(frames.shape[1]).double()
        keep = times <= clip_ms
        if not stamps:
            keep[0] = True  # a clip shorter than the first frame's centre still gets one frame
        embs.append(frames[:, keep.to(frames.device)])
        stamps.append(times[keep])
    emb = torch.cat(embs, dim=1).float().to(audio.device)
    ts = torch.cat(stamps).float().to(audio.device).expand(audio.shape[0], -1).contiguous()
    return emb, ts


def _device(model: HearModel) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")
