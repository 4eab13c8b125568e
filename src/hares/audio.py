"""Audio loading, cropping and the HARES log-mel frontend (docs/PROTOCOL.md sections 1 and 2)."""

from __future__ import annotations

import functools
import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from torch import nn

SAMPLE_RATE = 16000
WIN_LENGTH = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms
N_FFT = 512
N_MELS = 80
F_MIN = 60.0
F_MAX = 7800.0
LOG_FLOOR = 1e-5
EVAL_WINDOW_S = 10.24
EVAL_MIN_LAST_S = 1.0

FRONTEND_CONFIG = {
    "sample_rate": SAMPLE_RATE,
    "win_length": WIN_LENGTH,
    "hop_length": HOP_LENGTH,
    "n_fft": N_FFT,
    "n_mels": N_MELS,
    "f_min": F_MIN,
    "f_max": F_MAX,
    "log_floor": LOG_FLOOR,
    "window": "periodic_hann",
    "mel_scale": "htk(tf.signal)",
    "magnitude": "abs",
    "center": False,
    "resampler": "soxr-HQ",
    "compute_dtype": "float32",
}


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""


def load_audio(
    source: str | os.PathLike | bytes,
    sample_rate: int = SAMPLE_RATE,
    start: float = 0.0,
    end: float = 0.0,
    name: str | None = None,
) -> np.ndarray:
    """The one decoder of hares: a file path (wav/flac/ogg/mp3) or the bytes of one (a shard member) -> float32
    mono in [-1, 1] at `sample_rate` (channels averaged, soxr HQ resampling).

    start, end: a segment in seconds (end 0 = to the end of the file); only that segment is read and resampled.
    name: how to name the source in errors (default: the path). Raises FileNotFoundError for a missing file and
    AudioError (a ValueError) naming the file for anything undecodable, empty or non-finite.
    """
    if isinstance(source, bytes):
        name, handle = name or "<bytes>", io.BytesIO(source)
    else:
        path = Path(source)
        name = name or str(path)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no such audio file")
        handle = str(path)
    try:
        with sf.SoundFile(handle) as f:
            sr = f.samplerate
            a = int(round(start * sr))
            b = int(round(end * sr)) if end else f.frames
            if a or b < f.frames:
                f.seek(min(a, f.frames))
            data = f.read(max(0, b - a), dtype="float32", always_2d=True)  # (N, C)
    except Exception as e:  # libsndfile raises LibsndfileError / RuntimeError / TypeError on bad files
        raise AudioError(f"{name}: cannot decode as audio ({type(e).__name__}: {e})") from e
    if data.shape[0] == 0:
        what = f"segment {start}-{end} s" if start or end else "file"
        raise AudioError(f"{name}: {what} has zero samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{name}: contains non-finite samples (NaN or inf)")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sr != sample_rate:
        wav = soxr.resample(wav, sr, sample_rate, quality="HQ")
    return np.ascontiguousarray(np.clip(wav, -1.0, 1.0), dtype=np.float32)


def pad_to(wav: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end to at least `length` samples."""
    if wav.shape[-1] >= length:
        return wav
    return np.pad(wav, [(0, 0)] * (wav.ndim - 1) + [(0, length - wav.shape[-1])])


def random_crop(wav: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly placed crop of `length` samples (zero-padded first if the clip is shorter)."""
    wav = pad_to(wav, length)
    start = int(rng.integers(0, wav.shape[-1] - length + 1))
    return wav[..., start : start + length]


def centre_crop(wav: np.ndarray, length: int) -> np.ndarray:
    """The middle `length` samples (zero-padded first if the clip is shorter)."""
    wav = pad_to(wav, length)
    start = (wav.shape[-1] - length) // 2
    return wav[..., start : start + length]


def eval_windows(
    wav: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    window_s: float = EVAL_WINDOW_S,
    min_last_s: float = EVAL_MIN_LAST_S,
) -> list[np.ndarray]:
    """docs/PROTOCOL.md section 2: the whole clip up to `window_s`; longer clips in consecutive windows.

    The last window is zero-padded to `min_last_s` only if it is shorter than that, else kept as is.
    Every window is at least one STFT frame long. The caller averages the window embeddings.
    """
    win = int(round(window_s * sample_rate))
    min_last = int(round(min_last_s * sample_rate))
    if wav.shape[-1] <= win:
        return [pad_to(wav, WIN_LENGTH)]
    windows = [wav[..., s : s + win] for s in range(0, wav.shape[-1], win)]
    if windows[-1].shape[-1] < min_last:
        windows[-1] = pad_to(windows[-1], min_last)
    return windows


def num_frames(num_samples: int) -> int:
    """Frames of the frontend for a clip of `num_samples` (clips shorter than a window count as one window)."""
    return 1 + (max(num_samples, WIN_LENGTH) - WIN_LENGTH) // HOP_LENGTH


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(f / 700.0)  # == 2595 * log10(1 + f / 700)


def mel_weight_matrix(
    n_mels: int = N_MELS,
    n_bins: int = N_FFT // 2 + 1,
    sample_rate: int = SAMPLE_RATE,
    f_min: float = F_MIN,
    f_max: float = F_MAX,
) -> np.ndarray:
    """`tf.signal.linear_to_mel_weight_matrix`: (n_bins, n_mels), triangles in the mel domain, DC bin zero."""
    freqs = np.linspace(0.0, sample_rate / 2.0, n_bins)[1:]
    bins_mel = _hz_to_mel(freqs)[:, None]  # (n_bins - 1, 1)
    edges = np.linspace(_hz_to_mel(np.float64(f_min)), _hz_to_mel(np.float64(f_max)), n_mels + 2)
    lower, centre, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]  # (1, n_mels)
    lower_slope = (bins_mel - lower) / (centre - lower)
    upper_slope = (upper - bins_mel) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(lower_slope, upper_slope))
    return np.pad(weights, [(1, 0), (0, 0)])


class _OneBlasThread:
    """numpy's BLAS held to one thread while any CPU frontend call runs (re-entrant across threads: the first
    caller sets the limit, the last one restores it). Its (1024 x 60) @ (60 x 20) products are too small to
    split, and a multi-threaded BLAS that spins between them ran 10x slower on a loaded machine."""

    def __init__(self) -> None:
        import threading

        self._lock, self._users, self._limit = threading.Lock(), 0, None

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                self._limit = _blas_controller().limit(limits=1, user_api="blas")
            self._users += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._limit.restore_original_limits()


@functools.cache
def _blas_controller():  # noqa: ANN202 - threadpoolctl.ThreadpoolController, imported lazily
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


_ONE_BLAS_THREAD = _OneBlasThread()


class LogMel(nn.Module):
    """Waveforms (B, N) at 16 kHz -> log-mels (B, 1, T, 80), T = 1 + (N - 400) // 160.

    Frames of 400 samples with a periodic Hann window, zero-padded to 512 for the FFT (as `tf.signal.stft`),
    magnitude, HTK mel 60-7800 Hz (`tf.signal.linear_to_mel_weight_matrix`), natural log of max(mel, 1e-5)
    (docs/PROTOCOL.md section 1).

    Precision: the window and FFT run in float32 by default, as the pinned reference (`tf.signal` on float32
    audio, as COLA runs it) does; `dtype=torch.float64` runs them in float64. The mel projection and the output
    are float32 either way (the mel sum has only non-negative terms, so float32 keeps it accurate).
    Accuracy contract of the float32 default against a float64 evaluation of the same definition (tested on
    FSDD recordings upsampled from 8 kHz, the hard case, and on white noise in `tests/test_audio.py`): the
    log-mel is within 1e-3 wherever the reference mel energy is at least 1e-3 (4.6 nats above the 1e-5 floor),
    and within 0.5 everywhere. Below that, bands 1e-6 under the peak (the empty band above 4 kHz of an 8 kHz
    recording) hold float32 rounding noise of the FFT, exactly as the float32 reference itself does.

    Two implementations of the same definition:
    - on CPU tensors without autograd (evaluation, decoding workers), frames are windowed in chunks that stay
      in cache and transformed with `scipy.fft.rfft` (pocketfft with SIMD, about 3x torch's CPU FFT for
      512-point transforms); magnitude, the mel projection (in bands that skip the filterbank's zeros, see
      `_mel_bands`) and the log run in numpy on each chunk, chunks in parallel threads (`torch.get_num_threads()`)
      with numpy's BLAS held to one thread meanwhile (no OpenMP or BLAS thread team, whose spinning stalls
      on a loaded machine);
    - elsewhere (GPU, or a waveform that requires grad) `torch.stft`. `torch.stft(n_fft=512, win_length=400)`
      centres the 400-sample window inside each 512-sample frame; we shift the signal by (512 - 400) / 2
      samples so the windowed samples are exactly tf's frames (the offset inside the FFT buffer only changes
      the phase, never the magnitude).
    Both agree to float32 rounding (`tests/test_audio.py`).
    """

    CHUNK_ROWS = 1024  # frames per CPU chunk: 1024 x 512 float32 = 2 MiB per buffer, stays in cache
    MEL_BANDS = 4  # groups of mel bins multiplied separately on CPU (see `_mel_bands`)

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_mels: int = N_MELS,
        win_length: int = WIN_LENGTH,
        hop_length: int = HOP_LENGTH,
        n_fft: int = N_FFT,
        f_min: float = F_MIN,
        f_max: float = F_MAX,
        log_floor: float = LOG_FLOOR,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.win_length, self.hop_length, self.n_fft, self.log_floor = win_length, hop_length, n_fft, log_floor
        self.n_mels = n_mels
        window = torch.hann_window(win_length, periodic=True, dtype=torch.float64).to(dtype)
        self.register_buffer("window", window, persistent=False)
        mel = mel_weight_matrix(n_mels, n_fft // 2 + 1, sample_rate, f_min, f_max)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)  # (n_fft // 2 + 1, n_mels)
        used = np.nonzero(mel.any(axis=1))[0]
        self.bins = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)  # bins with a nonzero weight
        self._bands: list | None = None

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        with torch.autocast(wav.device.type, enabled=False):  # never in bf16/fp16: the log floor is 1e-5
            if wav.ndim == 1:
                wav = wav[None]
            if wav.shape[-1] < self.win_length:
                wav = nn.functional.pad(wav, (0, self.win_length - wav.shape[-1]))
            if wav.device.type == "cpu" and not (wav.requires_grad and torch.is_grad_enabled()):
                return self._logmel_cpu(wav)
            return self._logmel_torch(wav)

    def _logmel_torch(self, wav: torch.Tensor) -> torch.Tensor:
        wav = wav.to(self.window.dtype)  # (B, N)
        shift = (self.n_fft - self.win_length) // 2
        wav = nn.functional.pad(wav, (shift, self.n_fft - self.win_length - shift))  # (B, N + 112)
        spec = torch.stft(
            wav,
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=False,
            return_complex=True,
        )  # (B, n_fft // 2 + 1, T) complex
        mag = torch.linalg.vector_norm(torch.view_as_real(spec), dim=-1).float()  # |STFT|, faster than .abs()
        mel = torch.matmul(mag.transpose(1, 2), self.mel.float())  # (B, T, n_mels)
        return torch.log(mel.clamp_min(self.log_floor)).unsqueeze(1)  # (B, 1, T, n_mels)

    def _mel_bands(self) -> list[tuple[int, int, int, int, np.ndarray]]:
        """The filterbank cut into MEL_BANDS groups of mel bins: (mel lo, mel hi, bin lo, bin hi, weights).

        Each triangle spans few FFT bins, so each group multiplies only the bins its triangles touch: a quarter
        of the dense (257 x 80) product's work for 4 groups, same sums (zero weights dropped, nothing else).
        """
        if getattr(self, "_bands", None) is None:
            mel = self.mel.double().numpy()
            edges = np.linspace(0, self.n_mels, self.MEL_BANDS + 1).astype(int)
            bands = []
            for m0, m1 in zip(edges[:-1], edges[1:]):
                used = np.nonzero(mel[:, m0:m1].any(axis=1))[0]
                lo, hi = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
                bands.append((int(m0), int(m1), lo, hi, np.ascontiguousarray(mel[lo:hi, m0:m1], np.float32)))
            self._bands = bands
        return self._bands

    def _logmel_cpu(self, wav: torch.Tensor) -> torch.Tensor:
        x = wav.detach().to(self.window.dtype).contiguous().numpy()  # (B, N)
        batch, n = x.shape
        frames = 1 + (n - self.win_length) // self.hop_length
        step = x.strides[-1]
        strides = (x.strides[0], self.hop_length * step, step)
        view = np.lib.stride_tricks.as_strided(x, (batch, frames, self.win_length), strides, writeable=False)
        out = np.empty((batch, 1, frames, self.n_mels), np.float32)
        rows = self.CHUNK_ROWS
        if frames <= rows:  # chunks of whole clips
            per = rows // frames
            spans = [(b, min(b + per, batch), 0, frames) for b in range(0, batch, per)]
        else:  # chunks of frames inside one clip
            spans = [(b, b + 1, t, min(t + rows, frames)) for b in range(batch) for t in range(0, frames, rows)]
        threads = min(torch.get_num_threads(), len(spans))
        with _ONE_BLAS_THREAD:  # small products; the threads come from chunks
            if threads > 1:
                with ThreadPoolExecutor(threads) as pool:  # numpy, scipy and BLAS release the GIL
                    list(pool.map(lambda span: self._chunk(view, out, *span), spans))
            else:
                for span in spans:
                    self._chunk(view, out, *span)
        return torch.from_numpy(out)

    def _chunk(self, view: np.ndarray, out: np.ndarray, b0: int, b1: int, t0: int, t1: int) -> None:
        """log-mels of frames [t0, t1) of clips [b0, b1) of `view` (B, T, 400) into `out` (B, 1, T, n_mels)."""
        import scipy.fft

        r = (b1 - b0) * (t1 - t0)
        buf = np.zeros((r, self.n_fft), view.dtype)  # zero padding 400 -> 512
        np.multiply(
            view[b0:b1, t0:t1], self.window.numpy(), out=buf[:, : self.win_length].reshape(b1 - b0, t1 - t0, -1)
        )
        spec = scipy.fft.rfft(buf, axis=-1, overwrite_x=True)  # (r, 257) complex
        mag = np.abs(spec[:, : self.bins[1]])  # (r, bins used)
        mel = out[b0:b1, 0, t0:t1].reshape(r, self.n_mels)  # a view: whole clips or one clip's rows
        for m0, m1, lo, hi, weights in self._mel_bands():
            mel[:, m0:m1] = mag[:, lo:hi] @ weights
        np.log(np.maximum(mel, self.log_floor, out=mel), out=mel)


def frames_for_seconds(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    return num_frames(int(math.floor(seconds * sample_rate)))
