"""Sound sources of hares-synth: source-filter speech, eight instrument families, scene textures and events.

Every function takes a `np.random.Generator` and returns float32 audio at 16 kHz, unnormalised; the task
layer (`hares.data.synth`) places sources in clips and adds the nuisances (loudness, noise, reverb, offsets).
Plain numpy/scipy DSP, vectorised over samples so one clip costs a few milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

SR = 16000
HOP = 160  # frame rate of the speech parameter tracks (10 ms)
NYQ_GUARD = 7600.0  # partials above this are dropped (no aliasing)


def _t(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float32) / SR


def additive(f0: np.ndarray, ratios: np.ndarray, amps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sum of partials `ratios[h] * f0(t)` with amplitudes `amps` (H,) or (H, N); f0 is (N,) in Hz."""
    cycles = np.cumsum(f0, dtype=np.float64) / SR  # (N,) fundamental periods elapsed
    ratios = np.asarray(ratios, dtype=np.float64)[:, None]  # (H, 1)
    amps = np.asarray(amps, dtype=np.float32)
    amps = amps if amps.ndim == 2 else amps[:, None]
    keep = ratios[:, 0] * f0.max() < NYQ_GUARD  # partials that never alias
    offsets = rng.uniform(0, 1, size=(ratios.shape[0], 1))
    ratios, offsets, amps = ratios[keep], offsets[keep], amps[keep] if amps.shape[0] > 1 else amps
    arg = (2 * np.pi * np.mod(ratios * cycles[None, :] + offsets, 1.0)).astype(np.float32)  # (H, N)
    return (np.sin(arg) * amps).sum(0)


def envelope(n: int, attack: float, decay: float, sustain: float = 0.0, release: float = 0.05) -> np.ndarray:
    """Attack (s, linear) then exponential decay (time constant s) toward `sustain`, released at the end."""
    t = _t(n)
    env = np.minimum(t / max(attack, 1e-4), 1.0)
    env = env * (sustain + (1 - sustain) * np.exp(-np.maximum(t - attack, 0) / decay))
    rel = int(release * SR)
    if 0 < rel < n:
        env[-rel:] *= np.linspace(1, 0, rel, dtype=np.float32)
    return env.astype(np.float32)


def bandnoise(rng: np.random.Generator, n: int, lo: float, hi: float, order: int = 2) -> np.ndarray:
    """White noise band-passed to [lo, hi] Hz."""
    lo, hi = max(lo, 20.0), min(hi, SR / 2 - 200)
    sos = signal.butter(order, [lo, hi], "bandpass", fs=SR, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(n)).astype(np.float32)


def colored_noise(rng: np.random.Generator, n: int, slope_db_oct: float) -> np.ndarray:
    """Noise whose power spectrum falls by `slope_db_oct` dB per octave (0 white, 3 pink, 6 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    spec *= (f / 1000.0) ** (-slope_db_oct / 20 * np.log2(10))  # amplitude exponent for the power slope
    x = np.fft.irfft(spec, n).astype(np.float32)
    return x / (np.sqrt(np.mean(x**2)) + 1e-9)


# ---------------------------------------------------------------------------------------------- instruments
def pluck(rng: np.random.Generator, f0: float, n: int) -> np.ndarray:
    """Karplus-Strong plucked string: a noise burst in a loop of delay line + averaging filter + allpass tuning."""
    total = SR / f0 - 0.5  # the averaging filter adds half a sample of delay
    p = int(np.floor(total))
    frac = total - p
    if frac < 0.1:  # keep the allpass coefficient well inside the unit circle
        p, frac = p - 1, frac + 1
    c = (1 - frac) / (1 + frac)  # first-order allpass with delay `frac`
    rho = rng.uniform(0.985, 0.998)
    burst = np.zeros(n)
    burst[:p] = signal.lfilter([1 - 0.6 * rng.uniform()], [1, -0.6 * rng.uniform()], rng.uniform(-1, 1, p))
    # y = x_ap + rho * z^-p * (1 + z^-1)/2 * y, with allpass A(z) = (c + z^-1) / (1 + c z^-1) in the loop
    den = np.zeros(p + 3)
    den[0], den[1] = 1.0, c
    den[p:] -= rho * 0.5 * np.array([c, 1 + c, 1.0])
    return signal.lfilter([1.0, c], den, burst).astype(np.float32)


def fm_bell(rng: np.random.Generator, f0: float, n: int) -> np.ndarray:
    """Chowning FM bell: inharmonic modulator ratio, decaying index and amplitude."""
    t = _t(n)
    ratio = rng.uniform(1.35, 1.45) if rng.uniform() < 0.7 else rng.uniform(3.4, 3.6)
    tau = rng.uniform(0.3, 0.9)
    index = rng.uniform(3, 8) * np.exp(-t / (tau * 0.6))
    mod = index * np.sin(2 * np.pi * ratio * f0 * t)
    return (np.sin(2 * np.pi * f0 * t + mod) * np.exp(-t / tau) * np.minimum(t / 0.002, 1)).astype(np.float32)


def organ(rng: np.random.Generator, f0: float, n: int) -> np.ndarray:
    """Additive drawbar organ: octave-related partials, flat sustain, fast attack and release."""
    ratios = np.array([0.5, 1, 2, 3, 4, 6, 8])
    drawbars = rng.uniform(0, 1, 7) * (rng.uniform(size=7) < 0.7)
    drawbars[1] = max(drawbars[1], 0.5)
    trem = 1 + rng.uniform(0, 0.15) * np.sin(2 * np.pi * rng.uniform(4, 7) * _t(n))
    return additive(np.full(n, f0, np.float32), ratios, drawbars, rng) * envelope(n, 0.01, 1e9, 1.0, 0.03) * trem


def brass(rng: np.random.Generator, f0: float, n: int) -> np.ndarray:
    """Filtered sawtooth whose low-pass cutoff opens with the attack (brass 'blat')."""
    k = np.arange(1, 40)
    env = envelope(n, rng.uniform(0.03, 0.08), rng.uniform(0.2, 0.6), rng.uniform(0.5, 0.8), 0.05)
    cutoff = f0 * (1.5 + rng.uniform(4, 10) * env)  # (N,)
    amps = (1 / k)[:, None] / (1 + (k[:, None] * f0 / cutoff[None, :]) ** 4)  # (H, N)
    return additive(np.full(n, f0, np.float32), k, amps, rng) * env


def reed(rng: np.random.Generator, f0: float, n: int) -> np.ndarray:
    """Clarinet-like: odd harmonics (1/k), weak even ones, breath noise."""
    k = np.arange(1, 30)
    amps = np.where(k % 2 == 1, 1 / k, rng.uniform(0.0, 0.08) / k) * np.exp(-k * rng.uniform(0.02, 0.12))
    env = envelope(n, rng.uniform(0.02, 0.06), 1e9, 1.0, 0.05)
    breath = 0.02 * bandnoise(rng, n, 1000, 5000) * env
    return additive(np.full(n, f0, np.float32), k, amps, rng) * env + breath


def bowed(rng: np.random.Generator, f0: float, n: int) -> np.ndarray:
    """Bowed string: sawtooth spectrum with a body resonance, vibrato and a slow attack."""
    k = np.arange(1, 40)
    body = 1 + 2.0 / (1 + ((k * f0 - rng.uniform(400, 700)) / 150.0) ** 2)
    t = _t(n)
    vib = 1 + rng.uniform(0.004, 0.012) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t) * np.minimum(t / 0.25, 1)
    env = envelope(n, rng.uniform(0.08, 0.2), 1e9, 1.0, 0.08)
    return additive((f0 * vib).astype(np.float32), k, body / k, rng) * env


def mallet(rng: np.random.Generator, f0: float, n: int) -> np.ndarray:
    """Struck bar (marimba/vibraphone): inharmonic partials, higher ones decaying faster, plus a strike click."""
    ratios = np.array([1.0, 2.756, 5.404, 8.933]) if rng.uniform() < 0.5 else np.array([1.0, 3.93, 9.54])
    tau = rng.uniform(0.15, 0.6)
    t = _t(n)
    amps = rng.uniform(0.2, 1, len(ratios)) / ratios**0.5
    amps[0] = 1.0
    decays = np.exp(-t[None, :] / (tau / ratios[:, None] ** 0.7))  # (H, N)
    click = bandnoise(rng, n, 2000, 7000) * np.exp(-t / 0.003) * 0.3
    return additive(np.full(n, f0, np.float32), ratios, amps[:, None] * decays, rng) + click


def noise_drum(rng: np.random.Generator, f0: float, n: int) -> np.ndarray:
    """Noise percussion: a band of noise around the nominal pitch with a fast decay and a falling tone."""
    t = _t(n)
    tau = rng.uniform(0.05, 0.25)
    width = rng.uniform(0.3, 1.5)
    noise = bandnoise(rng, n, f0 * (1 - width / 2), f0 * (1 + width) * 2) * np.exp(-t / tau)
    tone_f = f0 * (1 + rng.uniform(0.1, 0.6) * np.exp(-t / 0.03))
    tone = additive(tone_f.astype(np.float32), np.array([1.0]), np.array([1.0]), rng) * np.exp(-t / (tau * 0.7))
    return noise + rng.uniform(0.0, 0.5) * tone


INSTRUMENTS = {
    "plucked": pluck,
    "bell": fm_bell,
    "organ": organ,
    "brass": brass,
    "reed": reed,
    "bowed": bowed,
    "mallet": mallet,
    "percussion": noise_drum,
}


def note(rng: np.random.Generator, family: str, midi: float, seconds: float) -> np.ndarray:
    """One note of `family` at MIDI pitch `midi` (fractional = detuned), unit peak."""
    n = int(seconds * SR)
    x = INSTRUMENTS[family](rng, 440.0 * 2 ** ((midi - 69) / 12), n)
    return x / (np.abs(x).max() + 1e-9)


# ---------------------------------------------------------------------------------------------- speech
# Phonemes: (kind, F1, F2, F3, noise band lo, noise band hi, base duration in s)
PHONEMES = {
    "a": ("v", 730, 1090, 2440, 0, 0, 0.13),
    "i": ("v", 270, 2290, 3010, 0, 0, 0.11),
    "u": ("v", 300, 870, 2240, 0, 0, 0.11),
    "e": ("v", 530, 1840, 2480, 0, 0, 0.11),
    "o": ("v", 570, 840, 2410, 0, 0, 0.12),
    "ae": ("v", 660, 1720, 2410, 0, 0, 0.13),
    "ah": ("v", 640, 1190, 2390, 0, 0, 0.10),
    "ih": ("v", 390, 1990, 2550, 0, 0, 0.09),
    "uh": ("v", 440, 1020, 2240, 0, 0, 0.09),
    "er": ("v", 490, 1350, 1690, 0, 0, 0.12),
    "m": ("n", 250, 1200, 2200, 0, 0, 0.07),
    "n": ("n", 250, 1700, 2600, 0, 0, 0.07),
    "l": ("a", 360, 1300, 2800, 0, 0, 0.06),
    "r": ("a", 420, 1300, 1600, 0, 0, 0.06),
    "w": ("a", 300, 700, 2200, 0, 0, 0.05),
    "y": ("a", 280, 2200, 3000, 0, 0, 0.05),
    "s": ("f", 0, 0, 0, 4500, 7500, 0.10),
    "sh": ("f", 0, 0, 0, 2200, 4500, 0.10),
    "f": ("f", 0, 0, 0, 1200, 7000, 0.09),
    "h": ("f", 0, 0, 0, 500, 3000, 0.06),
    "p": ("s", 0, 0, 0, 400, 1500, 0.07),
    "t": ("s", 0, 0, 0, 3000, 6000, 0.07),
    "k": ("s", 0, 0, 0, 1500, 3000, 0.07),
    "b": ("S", 0, 0, 0, 300, 1200, 0.06),
    "d": ("S", 0, 0, 0, 2500, 5000, 0.06),
    "g": ("S", 0, 0, 0, 1200, 2500, 0.06),
}
SPEECH_TOP_HZ = 5000.0  # voiced harmonics stop here; fricative noise covers the top band
VOWELS = [p for p, v in PHONEMES.items() if v[0] == "v"]
CONSONANTS = [p for p, v in PHONEMES.items() if v[0] != "v"]
# Five pairs of words made of the same sounds in another order, as "dog" and "god" are: a word is told by the
# order of its sounds, never by its average spectrum (ten words with ten different vowels would let mean log-mel
# statistics name the word from the vowel alone: 66% against 39% for these pairs with the same speakers).
KEYWORDS = {
    "stop": ["s", "t", "a", "p"],
    "pots": ["p", "a", "t", "s"],
    "tip": ["t", "ih", "p"],
    "pit": ["p", "ih", "t"],
    "net": ["n", "e", "t"],
    "ten": ["t", "e", "n"],
    "dog": ["d", "ah", "g"],
    "god": ["g", "ah", "d"],
    "no": ["n", "o", "u"],
    "own": ["o", "u", "n"],
}


def random_voice(rng: np.random.Generator) -> dict:
    """A speaker: pitch, pitch range, vocal-tract scale, breathiness, speaking rate, spectral tilt."""
    return {
        "f0": float(np.exp(rng.uniform(np.log(85), np.log(260)))),
        "f0_range": float(rng.uniform(0.05, 0.35)),  # relative pitch excursion over a word
        "vtl": float(rng.uniform(0.82, 1.22)),  # formant scale (small vocal tract -> high formants)
        "breath": float(rng.uniform(0.0, 0.6)),
        "rate": float(rng.uniform(0.75, 1.35)),
        "tilt": float(rng.uniform(0.6, 1.6)),  # harmonic roll-off exponent
    }


def jitter_voice(rng: np.random.Generator, voice: dict) -> dict:
    """The same speaker on another day: small changes of pitch, rate and breathiness."""
    v = dict(voice)
    v["f0"] *= float(np.exp(rng.normal(0, 0.05)))
    v["vtl"] *= float(np.exp(rng.normal(0, 0.015)))
    v["rate"] *= float(np.exp(rng.normal(0, 0.07)))
    v["breath"] = float(np.clip(v["breath"] + rng.normal(0, 0.05), 0, 1))
    return v


def random_word(rng: np.random.Generator) -> list[str]:
    """A pseudo-word: consonant-vowel syllables, 1 to 2 of them, optional final consonant."""
    word: list[str] = []
    for _ in range(int(rng.integers(1, 3))):
        if rng.uniform() < 0.7:
            word.append(str(rng.choice(CONSONANTS)))
        word.append(str(rng.choice(VOWELS)))
    if rng.uniform() < 0.5:
        word.append(str(rng.choice(CONSONANTS)))
    return word


def _resonances(freqs: np.ndarray, formants: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Sum of three resonance curves; freqs (..., T), formants (3, T), returns (..., T)."""
    out = 0.0
    for j, g in enumerate((1.0, 0.6, 0.35)):
        out = out + g / (1 + ((freqs - formants[j]) / bw[j]) ** 2)
    return out


def speak(rng: np.random.Generator, phonemes: list[str], voice: dict) -> np.ndarray:
    """Source-filter synthesis of one word: harmonic source through moving formants, plus shaped noise."""
    durs = np.array([PHONEMES[p][6] for p in phonemes]) / voice["rate"] * rng.uniform(0.85, 1.15, len(phonemes))
    frames = np.maximum((durs * SR / HOP).astype(int), 3)
    t_frames = int(frames.sum()) + 6
    n = t_frames * HOP
    formants = np.zeros((3, t_frames))
    voiced = np.zeros(t_frames)
    noise_amp = np.zeros(t_frames)
    band = np.zeros((2, t_frames))
    pos = 3  # 30 ms lead-in of silence
    last_f = np.array([500.0, 1500.0, 2500.0])
    for p, m in zip(phonemes, frames, strict=True):
        kind, f1, f2, f3, lo, hi, _ = PHONEMES[p]
        sl = slice(pos, pos + m)
        if kind in "vna":
            last_f = np.array([f1, f2, f3], float)
            voiced[sl] = {"v": 1.0, "n": 0.35, "a": 0.7}[kind]
        elif kind == "f":
            noise_amp[sl] = 0.5 if p != "h" else 0.25
        else:  # stops: closure (with a voice bar when voiced), then a burst
            burst = slice(pos + m - 2, pos + m)
            noise_amp[burst] = 0.8
            if kind == "S":
                voiced[pos : pos + m - 2] = 0.15
        formants[:, sl] = last_f[:, None]
        band[:, sl] = [[lo], [hi]]
        pos += m
    formants[:, pos:] = last_f[:, None]
    formants[:, :3] = formants[:, 3:4]
    kernel = np.hanning(7) / np.hanning(7).sum()  # coarticulation: formants glide between targets
    formants = np.stack([np.convolve(np.pad(f, 3, mode="edge"), kernel, mode="valid") for f in formants])
    formants *= voice["vtl"]
    voiced = np.convolve(voiced, np.hanning(5) / 2, mode="same")

    # pitch track: declination plus a rise or fall over the word, with micro-jitter
    u = np.linspace(0, 1, t_frames)
    contour = 1 + voice["f0_range"] * rng.uniform(-1, 1) * (u - 0.5) - 0.05 * u + rng.normal(0, 0.004, t_frames)
    f0_frames = voice["f0"] * contour
    ts = np.arange(n) / HOP
    f0 = np.interp(ts, np.arange(t_frames), f0_frames).astype(np.float32)  # (N,)
    h = np.arange(1, int(SPEECH_TOP_HZ / f0_frames.min()) + 1)
    bw = np.array([80.0, 120.0, 180.0])[:, None] * (1 + 0.3 * voice["breath"])
    harm_f = h[:, None] * f0_frames[None, :]  # (H, T)
    amps = _resonances(harm_f, formants[:, None, :], bw[:, None, :]) * h[:, None] ** (-voice["tilt"] * 0.5)
    amps = (amps * voiced[None, :]).astype(np.float32)
    i0 = np.minimum(ts.astype(int), t_frames - 2)  # linear interpolation of the (H, T) track to (H, N)
    w = (ts - i0).astype(np.float32)
    amps_n = amps[:, i0] * (1 - w) + amps[:, i0 + 1] * w
    x = additive(f0, h, amps_n, rng)

    # noise: fricatives and bursts in their bands, aspiration (breathiness) through the formants
    fs, _, spec = signal.stft(rng.standard_normal(n), fs=SR, nperseg=2 * HOP, noverlap=HOP)
    cols = np.minimum(np.arange(spec.shape[1]), t_frames - 1)
    fr = fs[:, None]
    in_band = ((fr >= band[0, cols]) & (fr <= band[1, cols])).astype(float) * noise_amp[cols]
    aspir = voice["breath"] * 0.3 * voiced[cols] * _resonances(fr, formants[:, cols], bw * 2)
    _, noise = signal.istft(spec * (in_band + aspir), fs=SR, nperseg=2 * HOP, noverlap=HOP)
    x = x / (np.abs(x).max() + 1e-9) + 0.5 * noise[:n].astype(np.float32)
    return x.astype(np.float32)


# ---------------------------------------------------------------------------------------------- environment
def _sprinkle(rng: np.random.Generator, n: int, rate: float, make) -> np.ndarray:
    """Poisson-placed copies of `make(rng)` (short arrays) over n samples."""
    out = np.zeros(n, np.float32)
    for _ in range(rng.poisson(rate * n / SR)):
        ev = make(rng)
        start = int(rng.integers(0, n))
        m = min(len(ev), n - start)
        out[start : start + m] += ev[:m]
    return out


def _chirp(f_start: float, f_end: float, seconds: float, tau: float) -> np.ndarray:
    t = _t(int(seconds * SR))
    f = np.geomspace(f_start, f_end, len(t))
    return (np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / tau) * np.minimum(t / 0.002, 1)).astype(np.float32)


def _drop(rng: np.random.Generator) -> np.ndarray:
    return _chirp(rng.uniform(1500, 5000), rng.uniform(1500, 5000), 0.02, 0.004) * rng.uniform(0.2, 1)


def _bubble(rng: np.random.Generator) -> np.ndarray:
    f = rng.uniform(400, 1800)
    return _chirp(f, f * rng.uniform(1.3, 2.0), 0.03, rng.uniform(0.005, 0.015)) * rng.uniform(0.2, 1)


def _click(rng: np.random.Generator) -> np.ndarray:
    return bandnoise(rng, 200, 2000, 7000) * np.exp(-_t(200) / 0.002) * rng.uniform(0.3, 1)


def _thump(rng: np.random.Generator) -> np.ndarray:
    t = _t(2400)
    f = rng.uniform(60, 140) * (1 + 0.5 * np.exp(-t / 0.01))
    body = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / 0.04)
    return (body + 0.3 * np.pad(_click(rng), (0, 2200))).astype(np.float32)


def _bird(rng: np.random.Generator) -> np.ndarray:
    seconds = rng.uniform(0.05, 0.15)
    t = _t(int(seconds * SR))
    base = rng.uniform(2500, 5500)
    f = base * (1 + rng.uniform(-0.3, 0.3) * t / seconds + 0.08 * np.sin(2 * np.pi * rng.uniform(20, 60) * t))
    return (np.sin(2 * np.pi * np.cumsum(f) / SR) * np.hanning(len(t))).astype(np.float32)


def _babble(rng: np.random.Generator, n: int, voices: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    for _ in range(voices):
        v = random_voice(rng)
        pos = int(rng.integers(-SR // 4, n // 2))
        while pos < n:
            w = speak(rng, random_word(rng), v) * rng.uniform(0.3, 1)
            a, b = max(pos, 0), min(pos + len(w), n)
            if b > a:
                out[a:b] += w[a - pos : b - pos]
            pos += len(w) + int(rng.uniform(0.02, 0.2) * SR)
    return out


def _gusts(rng: np.random.Generator, n: int, rate: float, depth: float) -> np.ndarray:
    t = _t(n)
    return (1 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3))).astype(np.float32)


def scene(rng: np.random.Generator, name: str, n: int) -> np.ndarray:
    """An acoustic scene: a texture bed with the scene's typical events over it, unit RMS."""
    if name == "rain":
        x = colored_noise(rng, n, rng.uniform(0, 2)) * 0.3 + _sprinkle(rng, n, rng.uniform(40, 120), _drop) * 2
    elif name == "traffic":
        x = colored_noise(rng, n, rng.uniform(5, 7)) * _gusts(rng, n, rng.uniform(0.2, 0.8), 0.4)
        for _ in range(int(rng.integers(1, 3))):  # a passing engine with a Doppler glide
            f = rng.uniform(40, 110) * (1 + 0.06 * np.tanh((_t(n) - rng.uniform(0, n / SR)) * 4))
            x += 0.6 * additive(f.astype(np.float32), np.arange(1, 12), 1 / np.arange(1, 12), rng) * np.hanning(n)
    elif name == "crowd":
        x = _babble(rng, n, int(rng.integers(3, 5))) + 0.1 * colored_noise(rng, n, 3)
    elif name == "wind":
        centre = rng.uniform(200, 900)
        x = bandnoise(rng, n, centre * 0.5, centre * 2) * _gusts(rng, n, rng.uniform(0.3, 1.2), 0.8)
        x += bandnoise(rng, n, 2 * centre, 4 * centre) * 0.2 * _gusts(rng, n, rng.uniform(0.5, 2), 0.9)
    elif name == "water":
        x = _sprinkle(rng, n, rng.uniform(80, 200), _bubble) + 0.2 * colored_noise(rng, n, rng.uniform(0, 2))
    elif name == "birds":
        x = _sprinkle(rng, n, rng.uniform(4, 12), _bird) + 0.05 * colored_noise(rng, n, 4)
    elif name == "office":
        hum = additive(np.full(n, rng.choice([50.0, 60.0]), np.float32), np.arange(1, 6), 0.3 / np.arange(1, 6), rng)
        x = hum + 0.05 * colored_noise(rng, n, 4) + _sprinkle(rng, n, rng.uniform(3, 10), _click)
    elif name == "construction":
        x = _sprinkle(rng, n, rng.uniform(2, 6), _thump) + 0.1 * colored_noise(rng, n, 2)
        drill = additive(np.full(n, rng.uniform(90, 200), np.float32), np.arange(1, 30), 1 / np.arange(1, 30), rng)
        x += 0.3 * drill * (np.sin(2 * np.pi * rng.uniform(0.5, 2) * _t(n)) > rng.uniform(-0.2, 0.6))
    else:
        raise KeyError(f"unknown scene {name!r}")
    return (x / (np.sqrt(np.mean(x**2)) + 1e-9)).astype(np.float32)


SCENES = ("rain", "traffic", "crowd", "wind", "water", "birds", "office", "construction")


def event(rng: np.random.Generator, name: str) -> np.ndarray:
    """One sound event (0.1 to 0.7 s), unit peak."""
    if name == "dog_bark":
        barks = [speak(rng, ["h", "a"], {**random_voice(rng), "f0": rng.uniform(250, 500), "vtl": 1.3, "rate": 2.5})]
        if rng.uniform() < 0.5:
            barks.append(np.zeros(int(0.08 * SR), np.float32))
            barks.append(barks[0])
        x = np.concatenate(barks)
    elif name == "siren":
        t = _t(int(rng.uniform(0.4, 0.7) * SR))
        f = rng.uniform(600, 900) * (1 + 0.4 * np.sin(2 * np.pi * rng.uniform(1.5, 4) * t))
        x = additive(f.astype(np.float32), np.array([1, 2, 3]), np.array([1, 0.4, 0.2]), rng)
    elif name == "bell":
        x = fm_bell(rng, rng.uniform(400, 1200), int(0.6 * SR))
    elif name == "knock":
        x = np.concatenate([np.pad(_thump(rng), (0, int(rng.uniform(0.05, 0.12) * SR))) for _ in range(3)])
    elif name == "glass":
        x = mallet(rng, rng.uniform(2000, 4000), int(0.3 * SR))
    elif name == "speech":
        x = speak(rng, random_word(rng) + random_word(rng), random_voice(rng))
    elif name == "alarm":
        beep = additive(np.full(int(0.12 * SR), rng.uniform(1800, 3000), np.float32), np.array([1, 3]), [1, 0.3], rng)
        gap = np.zeros(int(0.06 * SR), np.float32)
        x = np.concatenate([beep, gap, beep, gap, beep])
    elif name == "footsteps":
        step = bandnoise(rng, 1600, 100, 1500) * np.exp(-_t(1600) / 0.015)
        pause = np.zeros(int(rng.uniform(0.12, 0.2) * SR), np.float32)
        x = np.concatenate([step, pause, step * 0.8, pause, step])
    elif name == "horn":
        n = int(rng.uniform(0.25, 0.5) * SR)
        f1 = rng.uniform(350, 450)
        k = np.arange(1, 15)
        x = additive(np.full(n, f1, np.float32), k, 1 / k, rng) + additive(
            np.full(n, f1 * 1.26, np.float32), k, 1 / k, rng
        )
        x *= envelope(n, 0.01, 1e9, 1.0, 0.03)
    elif name == "whistle":
        t = _t(int(rng.uniform(0.25, 0.5) * SR))
        f = rng.uniform(1200, 2500) * (1 + rng.uniform(-0.3, 0.3) * t / t[-1] + 0.02 * np.sin(2 * np.pi * 6 * t))
        x = additive(f.astype(np.float32), np.array([1.0]), np.array([1.0]), rng) * np.hanning(len(t))
    else:
        raise KeyError(f"unknown event {name!r}")
    x = np.asarray(x, np.float32)
    return x / (np.abs(x).max() + 1e-9)


EVENTS = ("dog_bark", "siren", "bell", "knock", "glass", "speech", "alarm", "footsteps", "horn", "whistle")
