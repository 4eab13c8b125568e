"""Audio loading, crops and the log-mel frontend against an independent numpy reference of tf.signal."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hares.audio import (
    AudioError,
    LogMel,
    centre_crop,
    eval_windows,
    load_audio,
    num_frames,
    pad_to,
    random_crop,
)


# ---- independent reference, written from the tf.signal definitions ---------------------------------------------
def ref_frames(x: np.ndarray, frame_length: int = 400, frame_step: int = 160) -> np.ndarray:
    """tf.signal.frame(pad_end=False)."""
    n = 1 + (len(x) - frame_length) // frame_step
    return np.stack([x[i * frame_step : i * frame_step + frame_length] for i in range(n)])


@functools.cache
def ref_mel_matrix(num_mel=80, num_spec=257, sr=16000, lo=60.0, hi=7800.0) -> np.ndarray:
    """tf.signal.linear_to_mel_weight_matrix, with the 2595*log10 form of the HTK mel scale."""

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)

    lin = np.linspace(0.0, sr / 2, num_spec)[1:]
    spec_mel = mel(lin)
    edges = np.linspace(mel(lo), mel(hi), num_mel + 2)
    w = np.zeros((num_spec, num_mel))
    for m in range(num_mel):
        lower, centre, upper = edges[m], edges[m + 1], edges[m + 2]
        for k, s in enumerate(spec_mel):
            w[k + 1, m] = max(0.0, min((s - lower) / (centre - lower), (upper - s) / (upper - centre)))
    return w


def ref_mel(x: np.ndarray) -> np.ndarray:
    """float64 mel energies (T, 80) of the tf.signal definition."""
    x = np.asarray(x, np.float64)
    if len(x) < 400:
        x = np.pad(x, (0, 400 - len(x)))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # tf.signal.hann_window(periodic=True)
    spec = np.abs(np.fft.rfft(ref_frames(x) * window, n=512))  # (T, 257)
    return spec @ ref_mel_matrix()  # (T, 80)


def ref_logmel(x: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(ref_mel(x), 1e-5))


def assert_contract(ours: np.ndarray, x: np.ndarray, where: str = "") -> tuple[float, float]:
    """The float32 accuracy contract (LogMel docstring): 1e-3 where the reference mel >= 1e-3, 0.5 everywhere."""
    mel = ref_mel(x)
    err = np.abs(ours - np.log(np.maximum(mel, 1e-5)))
    loud = mel >= 1e-3
    worst_loud, worst = float(err[loud].max(initial=0.0)), float(err.max())
    assert worst_loud <= 1e-3, f"{where}: {worst_loud:.2e} above 1e-3 where the reference mel >= 1e-3"
    assert worst <= 0.5, f"{where}: {worst:.3f} above 0.5"
    return worst_loud, worst


# ---- frontend --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [399, 400, 401, 48123])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logmel_matches_reference_on_noise(n: int, dtype: torch.dtype) -> None:
    x = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
    ours = LogMel(dtype=dtype)(torch.from_numpy(x)[None])
    assert ours.shape == (1, 1, num_frames(n), 80) and ours.dtype == torch.float32
    np.testing.assert_allclose(ours[0, 0].numpy(), ref_logmel(x), atol=1e-3, rtol=0)


@pytest.mark.parametrize("scale", [1.0, 1e-3])
def test_float32_contract_on_white_noise(scale: float) -> None:
    rng = np.random.default_rng(7)
    x = (scale * rng.standard_normal((8, 16000))).astype(np.float32)
    ours = LogMel()(torch.from_numpy(x))[:, 0].numpy()
    for i in range(len(x)):
        assert_contract(ours[i], x[i], f"noise x {scale:g}, row {i}")


def test_float32_contract_on_recordings(fsdd_files: list[Path]) -> None:
    """300 FSDD recordings (8 kHz, upsampled: an empty band above 4 kHz, 1e-6 below the peak)."""
    frontend, worst = LogMel(), (0.0, 0.0)
    for path in fsdd_files[::10]:
        x = load_audio(path)
        w = assert_contract(frontend(torch.from_numpy(x)[None])[0, 0].numpy(), x, str(path))
        worst = max(worst[0], w[0]), max(worst[1], w[1])
    assert worst[1] > worst[0]  # the quiet bands are where float32 deviates, as the reference itself does


def test_float64_matches_reference_on_recordings(fsdd_files: list[Path]) -> None:
    for path in fsdd_files[::600]:
        x = load_audio(path)
        ours = LogMel(dtype=torch.float64)(torch.from_numpy(x)[None])[0, 0].numpy()
        np.testing.assert_allclose(ours, ref_logmel(x), atol=1e-3, rtol=0, err_msg=str(path))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_path_equals_torch_stft_path(dtype: torch.dtype) -> None:
    """The chunked scipy path (CPU, no grad) and the torch.stft path (GPU, autograd) compute the same thing."""
    x = torch.randn(3, 16000) * 0.2  # 98 frames each: chunks of several clips
    long = torch.randn(1, 180000) * 0.2  # 1123 frames: chunks inside one clip
    for wav in (x, long):
        frontend = LogMel(dtype=dtype)
        fast = frontend(wav)
        ref = frontend._logmel_torch(wav)
        torch.testing.assert_close(fast, ref, atol=2e-4, rtol=0)
    grad = x.clone().requires_grad_(True)
    torch.testing.assert_close(LogMel(dtype=dtype)(grad), LogMel(dtype=dtype)(x), atol=2e-4, rtol=0)


@pytest.mark.parametrize(("n", "t"), [(1, 1), (399, 1), (400, 1), (559, 1), (560, 2), (16000, 98), (48000, 298)])
def test_frame_count(n: int, t: int) -> None:
    assert num_frames(n) == t
    assert LogMel()(torch.zeros(3, n)).shape == (3, 1, t, 80)


def test_logmel_batch_equals_single() -> None:
    x = torch.randn(4, 8000) * 0.1
    batched = LogMel()(x)
    single = torch.cat([LogMel()(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(batched, single)
    assert batched.dtype == torch.float32


def test_logmel_silence_is_floor() -> None:
    out = LogMel()(torch.zeros(1, 1600))
    assert torch.allclose(out, torch.full_like(out, float(np.log(1e-5))))


# ---- loading ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_resample_to_16k(tmp_path: Path, sr: int) -> None:
    t = np.arange(sr) / sr  # one second of a 440 Hz tone
    sf.write(tmp_path / "tone.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, subtype="FLOAT")
    y = load_audio(tmp_path / "tone.wav")
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(y[:16000]))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins: the tone survives at the right frequency
    assert abs(np.max(np.abs(y[1000:-1000])) - 0.5) < 0.01


def test_stereo_downmix(tmp_path: Path) -> None:
    left = np.full(1600, 0.6, np.float32)
    right = np.full(1600, -0.2, np.float32)
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "st.wav"), 0.2, atol=1e-6)


@pytest.mark.parametrize(
    ("ext", "subtype", "tol"),
    [("wav", "PCM_16", 1e-4), ("flac", "PCM_16", 1e-4), ("ogg", None, 0.2), ("mp3", None, 0.2)],
)
def test_formats_round_trip(tmp_path: Path, ext: str, subtype: str | None, tol: float) -> None:
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    path = tmp_path / f"clip.{ext}"
    try:
        sf.write(path, x, 16000, subtype=subtype)
    except (sf.LibsndfileError, TypeError, ValueError) as e:  # pragma: no cover - libsndfile without mp3
        pytest.skip(f"libsndfile cannot write {ext}: {e}")
    y = load_audio(path)
    assert y.dtype == np.float32 and np.all(np.abs(y) <= 1)
    if ext in ("wav", "flac"):
        np.testing.assert_allclose(y, x, atol=tol)
    else:  # lossy codecs: same duration (encoder delay aside) and same dominant frequency
        assert abs(len(y) - 16000) < 2400
        assert abs(np.argmax(np.abs(np.fft.rfft(y[:16000], n=16000))) - 300) <= 2


def test_int16_scale(tmp_path: Path) -> None:
    sf.write(tmp_path / "i.wav", np.array([16384, -32768, 0], np.int16), 16000, subtype="PCM_16")
    np.testing.assert_allclose(load_audio(tmp_path / "i.wav"), [0.5, -1.0, 0.0])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")


def test_not_audio(tmp_path: Path) -> None:
    (tmp_path / "text.wav").write_text("this is not audio")
    with pytest.raises(AudioError, match=r"text\.wav.*cannot decode"):
        load_audio(tmp_path / "text.wav")


def test_truncated_file(tmp_path: Path) -> None:
    sf.write(tmp_path / "full.flac", np.zeros(16000, np.float32), 16000)
    (tmp_path / "cut.flac").write_bytes((tmp_path / "full.flac").read_bytes()[:20])
    with pytest.raises(AudioError, match="cut.flac"):
        load_audio(tmp_path / "cut.flac")


def test_zero_samples(tmp_path: Path) -> None:
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav.*zero samples"):
        load_audio(tmp_path / "empty.wav")


def test_non_finite(tmp_path: Path) -> None:
    sf.write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*non-finite"):
        load_audio(tmp_path / "nan.wav")


def test_very_short_clip_is_padded_not_rejected(tmp_path: Path) -> None:
    sf.write(tmp_path / "tiny.wav", np.full(10, 0.1, np.float32), 16000, subtype="FLOAT")
    y = load_audio(tmp_path / "tiny.wav")
    assert len(y) == 10
    assert LogMel()(torch.from_numpy(y)[None]).shape == (1, 1, 1, 80)


# ---- crops and evaluation windows ------------------------------------------------------------------------------
def test_random_crop_is_seeded_and_in_range() -> None:
    x = np.arange(1000, dtype=np.float32)
    a = random_crop(x, 100, np.random.default_rng(3))
    b = random_crop(x, 100, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert len(a) == 100 and np.all(np.diff(a) == 1)
    starts = {int(random_crop(x, 100, np.random.default_rng(s))[0]) for s in range(50)}
    assert len(starts) > 10 and min(starts) >= 0 and max(starts) <= 900
    assert len(random_crop(x[:30], 100, np.random.default_rng(0))) == 100


def test_centre_crop_and_pad() -> None:
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(centre_crop(x, 4), [3, 4, 5, 6])
    np.testing.assert_array_equal(pad_to(x[:2], 4), [0, 1, 0, 0])
    assert len(centre_crop(x, 20)) == 20


def test_eval_windows_policy() -> None:
    sr, win = 16000, 163840  # 10.24 s
    assert [len(w) for w in eval_windows(np.ones(5 * sr))] == [5 * sr]
    assert [len(w) for w in eval_windows(np.ones(win))] == [win]
    assert [len(w) for w in eval_windows(np.ones(2 * win + 3 * sr))] == [win, win, 3 * sr]  # >= 1 s: kept as is
    short_last = eval_windows(np.ones(win + sr // 2))
    assert [len(w) for w in short_last] == [win, sr]  # < 1 s: zero-padded to 1 s
    assert short_last[1][: sr // 2].all() and not short_last[1][sr // 2 :].any()
    assert [len(w) for w in eval_windows(np.ones(10))] == [400]


def test_logmel_float64_mode_and_module_casts() -> None:
    x = torch.randn(2, 4000) * 0.3
    ref = LogMel(dtype=torch.float64)(x)
    fast = LogMel()(x)
    cast = LogMel(dtype=torch.float64).float()(x)  # .float() on a parent model must keep the module consistent
    assert fast.dtype == cast.dtype == torch.float32
    torch.testing.assert_close(fast, ref, atol=2e-3, rtol=0)  # noise: no deep stop band, float32 is close
    torch.testing.assert_close(cast, fast)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(LogMel()(x), ref)


def test_cpu_frontend_restores_blas_threads_when_called_from_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    frontend, x = LogMel(), torch.randn(2, 16000)
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda _: frontend(x), range(16)))
    assert blas_threads() == before
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], atol=0, rtol=0)
