"""Deterministic demo datasets in the MUSDB18-HQ and DnR v2 layouts (no download).

The signals are synthetic but musically plausible and spectrally distinct, so that a small model can
learn to separate them: percussive drums (kick / snare / hats with envelopes), a low harmonic bass,
chord pads for ``other``, a voiced melodic line with formants and vibrato for vocals / speech, and
noisy or impulsive events for sound effects. Every stem has silent passages. The mixture is the exact
float32 sum of the stems, written as 32-bit float wav so that it stays exact on disk.

Same arguments (seed included) => byte-identical files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import signal
from tqdm import tqdm

from sfc.data.audio import SAMPLE_RATE, write_wav
from sfc.data.tracks import MIXTURE_FILE, VALID_LIST_FILE
from sfc.errors import UserError
from sfc.provenance import write_text_atomic

SR = SAMPLE_RATE
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
PROGRESSIONS = ([0, 4, 5, 3], [0, 5, 3, 4], [5, 3, 0, 4], [0, 3, 4, 4])  # scale degrees per bar
VOWELS = {  # formant frequencies (Hz) and bandwidths, after classic vowel tables
    "a": ((800, 1200, 2500), (80, 90, 120)),
    "e": ((400, 2000, 2600), (70, 100, 120)),
    "i": ((300, 2300, 3000), (50, 100, 120)),
    "o": ((500, 900, 2400), (70, 80, 120)),
    "u": ((330, 800, 2300), (50, 80, 120)),
}
MUSDB_FILE_ORDER = ("drums", "bass", "other", "vocals")  # summing order of the mixture
DNR_FILE_ORDER = ("speech", "music", "sfx")


@dataclass(frozen=True)
class SynthConfig:
    """Size of a demo dataset. Defaults keep the whole CPU demo pipeline short."""

    seed: int = 2026
    num_train: int = 8
    num_valid: int = 2
    num_test: int = 3
    duration: float = 20.0

    def __post_init__(self) -> None:
        if (
            min(self.num_train, self.num_valid, self.num_test) < 0
            or self.num_train + self.num_valid < 1
        ):
            raise UserError("track counts must be >= 0 with at least one train or valid track")
        if not 1.0 <= self.duration <= 600.0:
            raise UserError(f"duration must lie in [1, 600] s, got {self.duration}")


# ------------------------------------------------------------------------------------------ helpers


def midi_hz(m: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def env_ar(n: int, attack: float, decay: float) -> np.ndarray:
    """Attack (linear) then exponential decay envelope of n samples; times in seconds."""
    t = np.arange(n) / SR
    return np.minimum(t / max(attack, 1e-4), 1.0) * np.exp(-t / decay)


def env_asr(n: int, attack: float, release: float) -> np.ndarray:
    """Attack - sustain - release envelope of n samples."""
    t = np.arange(n) / SR
    return np.clip(np.minimum(t / attack, (n / SR - t) / release), 0.0, 1.0)


def bandpass(x: np.ndarray, low: float | None, high: float | None, order: int = 4) -> np.ndarray:
    if low and high:
        sos = signal.butter(order, [low, high], btype="bandpass", fs=SR, output="sos")
    elif low:
        sos = signal.butter(order, low, btype="highpass", fs=SR, output="sos")
    else:
        sos = signal.butter(order, high, btype="lowpass", fs=SR, output="sos")
    return signal.sosfilt(sos, x)


def add_at(buf: np.ndarray, event: np.ndarray, start: int) -> None:
    """Add ``event`` into ``buf`` from sample ``start``, cut at the end of ``buf``."""
    if start >= buf.shape[-1]:
        return
    n = min(event.shape[-1], buf.shape[-1] - start)
    buf[..., start : start + n] += event[..., :n]


def harmonic_tone(f0: np.ndarray, amp_of_freq, max_freq: float = 10_000.0) -> np.ndarray:
    """Additive synthesis: sum_k a(k f0(t)) sin(k phi(t)) with phi = 2 pi cumsum(f0) / SR."""
    phase = 2.0 * np.pi * np.cumsum(f0) / SR  # (L,)
    out = np.zeros_like(f0)
    for k in range(1, int(max_freq / max(float(f0.min()), 20.0)) + 1):
        fk = k * f0
        out += np.where(fk < max_freq, amp_of_freq(fk, k), 0.0) * np.sin(k * phase)
    return out


def formant_gain(freq: np.ndarray, vowel: str) -> np.ndarray:
    """Spectral envelope of a vowel: three resonances over a -6 dB/octave tilt."""
    centres, widths = VOWELS[vowel]
    gain = 0.05 * np.ones_like(freq)
    for c, w, a in zip(centres, widths, (1.0, 0.6, 0.3)):
        gain += a / (1.0 + ((freq - c) / w) ** 2)
    return gain * 200.0 / np.maximum(freq, 100.0)


def mute_passages(rng: np.random.Generator, n: int, max_regions: int = 2) -> np.ndarray:
    """A gain curve (n,) with 1..max_regions silent passages (10-20 % of the length each, 20-ms fades)."""
    gain = np.ones(n)
    fade = int(0.02 * SR)
    for _ in range(rng.integers(1, max_regions + 1)):
        width = int(n * rng.uniform(0.1, 0.2))
        start = int(rng.integers(0, max(n - width, 1)))
        gain[start : start + width] = 0.0
        ramp = np.linspace(1.0, 0.0, fade)
        lo = max(start - fade, 0)
        gain[lo:start] = np.minimum(gain[lo:start], ramp[fade - (start - lo) :])
        hi = min(start + width + fade, n)
        gain[start + width : hi] = np.minimum(
            gain[start + width : hi], ramp[::-1][: hi - start - width]
        )
    return gain


@dataclass(frozen=True)
class Song:
    """Musical skeleton shared by the stems of one track."""

    key: int  # midi note of the tonic
    beat: float  # seconds per beat
    progression: tuple[int, ...]

    def bar_samples(self) -> int:
        return int(round(4 * self.beat * SR))

    def chord(self, bar: int) -> list[int]:
        """Midi notes (triad) of the chord of ``bar``, around the tonic."""
        deg = self.progression[bar % len(self.progression)]
        return [self.key + 12 * ((deg + i) // 7) + int(MAJOR[(deg + i) % 7]) for i in (0, 2, 4)]


def make_song(rng: np.random.Generator) -> Song:
    bpm = rng.uniform(88, 136)
    prog = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    return Song(key=int(rng.integers(48, 56)), beat=60.0 / bpm, progression=tuple(prog))


# ------------------------------------------------------------------------------------------ stems


def drum_kit(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One-shot kick, snare and hat samples."""
    n = int(0.3 * SR)
    t = np.arange(n) / SR
    f = rng.uniform(45, 60) + 110.0 * np.exp(-t / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(f) / SR) * env_ar(n, 0.001, 0.12)
    noise = rng.standard_normal(n)
    snare = bandpass(noise, 1000, 7000) * env_ar(n, 0.001, 0.07) + 0.6 * np.sin(
        2 * np.pi * rng.uniform(170, 210) * t
    ) * env_ar(n, 0.001, 0.05)
    hat = bandpass(rng.standard_normal(n), 7000, None) * env_ar(n, 0.0005, 0.02)
    return {"kick": kick, "snare": snare, "hat": hat}


def drums_stem(rng: np.random.Generator, song: Song, n: int) -> np.ndarray:
    kit, out = drum_kit(rng), np.zeros(n)
    step = song.beat / 4.0
    kicks = {0, 8} | ({10} if rng.random() < 0.5 else {6})
    for i in range(int(n / SR / step)):
        pos, vel = int(i * step * SR), rng.uniform(0.7, 1.0)
        if i % 16 in kicks:
            add_at(out, vel * kit["kick"], pos)
        if i % 16 in (4, 12):
            add_at(out, vel * kit["snare"], pos)
        if i % 2 == 0:
            add_at(out, 0.4 * vel * kit["hat"], pos)
    return out


def bass_stem(rng: np.random.Generator, song: Song, n: int) -> np.ndarray:
    out, bar = np.zeros(n), song.bar_samples()
    note_len = int(song.beat * SR) // (1 if rng.random() < 0.5 else 2)
    for b in range(n // bar + 1):
        root = song.chord(b)[0] - 24  # two octaves down: ~ 40-110 Hz
        for j, start in enumerate(range(b * bar, (b + 1) * bar, note_len)):
            m = root + (7 if j % 4 == 3 and rng.random() < 0.4 else 0)
            f0 = np.full(note_len, midi_hz(m))
            tone = harmonic_tone(f0, lambda f, k: 1.0 / k**1.5, max_freq=2000.0)
            add_at(out, tone * env_ar(note_len, 0.005, 0.35), start)
    return out


def pad_stem(rng: np.random.Generator, song: Song, n: int) -> np.ndarray:
    """Sustained chords, two detuned voices per note, one chord per bar."""
    out, bar = np.zeros(n), song.bar_samples()
    for start in range(0, n, bar):
        length = min(bar, n - start)
        chord = np.zeros(length)
        for m in song.chord(start // bar):
            for detune in (-0.08, 0.08):
                f0 = np.full(length, midi_hz(m + 12 + detune))
                chord += 0.4 * harmonic_tone(f0, lambda f, k: 1.0 / k**2, 3000.0)
        out[start : start + length] = chord * env_asr(length, 0.15, 0.2)
    return out


def voice_line(
    rng: np.random.Generator, notes: list[tuple[float, float, float]], n: int, vib: float
) -> np.ndarray:
    """A voiced line: notes (start s, dur s, midi) with portamento, vibrato, vowel formants, breath."""
    out = np.zeros(n)
    for start, dur, m in notes:
        length = int(dur * SR)
        t = np.arange(length) / SR
        drift = (
            np.linspace(rng.uniform(-0.3, 0.3), 0.0, length)
            if vib > 0
            else np.linspace(1.0, -1.5, length)
        )
        vibrato = vib * np.sin(2 * np.pi * rng.uniform(5.0, 6.0) * t) * np.minimum(t / 0.15, 1.0)
        f0 = midi_hz(m + drift + vibrato)
        vowel = "aeiou"[rng.integers(5)]
        tone = harmonic_tone(f0, lambda f, k, v=vowel: formant_gain(f, v))
        breath = 0.005 * bandpass(rng.standard_normal(length), 2000, 8000)
        add_at(out, (tone + breath) * env_asr(length, 0.04, 0.08), int(start * SR))
    return out


def vocals_stem(rng: np.random.Generator, song: Song, n: int) -> np.ndarray:
    """Sung phrases of two bars separated by rests, on the song's scale."""
    notes, t, bar = [], rng.uniform(0.0, 1.0), 4 * song.beat
    while t < n / SR:
        phrase_end = t + 2 * bar
        while t < phrase_end:
            dur = song.beat * rng.choice([0.5, 1.0, 1.0, 2.0])
            notes.append(
                (
                    t,
                    dur * 0.95,
                    song.key + 12 + int(MAJOR[rng.integers(7)]) + 12 * rng.integers(0, 2),
                )
            )
            t += dur
        t += bar * rng.choice([0.5, 1.0])  # rest between phrases
    return voice_line(rng, notes, n, vib=0.35)


def speech_stem(rng: np.random.Generator, n: int) -> np.ndarray:
    """Utterances of syllables (falling intonation, changing vowels) with fricatives and pauses."""
    notes, t, base = [], rng.uniform(0.0, 0.5), 12 * np.log2(rng.uniform(100, 220) / 440.0) + 69
    out = np.zeros(n)
    while t < n / SR:
        for _ in range(rng.integers(4, 12)):
            dur = rng.uniform(0.12, 0.3)
            notes.append((t, dur, base + rng.uniform(-2, 2)))
            if rng.random() < 0.3:  # fricative
                m = int(rng.uniform(0.05, 0.1) * SR)
                add_at(
                    out,
                    0.05 * bandpass(rng.standard_normal(m), 3000, 9000) * env_asr(m, 0.01, 0.02),
                    int((t + dur) * SR),
                )
            t += dur + rng.uniform(0.02, 0.08)
        t += rng.uniform(0.3, 1.5)  # pause between utterances
    return out + voice_line(rng, notes, n, vib=0.0)


def sfx_stem(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sparse noisy and impulsive events: bangs, swooshes, rumbles, click trains."""
    out, t = np.zeros(n), rng.uniform(0.0, 1.0)
    while t < n / SR:
        kind = rng.integers(4)
        if kind == 0:  # bang
            m = int(rng.uniform(0.1, 0.4) * SR)
            ev = bandpass(rng.standard_normal(m), None, rng.uniform(1500, 6000)) * env_ar(
                m, 0.001, 0.08
            )
        elif kind == 1:  # swoosh
            m = int(rng.uniform(0.5, 2.0) * SR)
            lo = rng.uniform(300, 2000)
            ev = 0.5 * bandpass(rng.standard_normal(m), lo, lo * 3) * np.hanning(m)
        elif kind == 2:  # rumble
            m = int(rng.uniform(1.0, 3.0) * SR)
            ev = 0.8 * bandpass(rng.standard_normal(m), None, 150) * np.hanning(m)
        else:  # click train
            m, rate = int(rng.uniform(0.2, 0.6) * SR), rng.uniform(8, 30)
            ev = np.zeros(m)
            ev[(np.arange(0, m / SR, 1 / rate) * SR).astype(int)] = 1.0
            ev = bandpass(ev, 2000, 10000)
        add_at(out, ev, int(t * SR))
        t += m / SR + rng.uniform(0.3, 2.0)
    return out


# ------------------------------------------------------------------------------------------ tracks


def finish_stem(
    rng: np.random.Generator, mono: np.ndarray, level_db: float, num_channels: int
) -> np.ndarray:
    """Silent passages, level (RMS in dBFS, +-3 dB) and a constant pan. Returns (C, L) float64."""
    x = mono * mute_passages(rng, mono.shape[-1])
    rms = np.sqrt(np.mean(x**2)) + 1e-12
    x = x * 10.0 ** ((level_db + rng.uniform(-3, 3)) / 20.0) / rms
    if num_channels == 1:
        return x[None]
    pan = rng.uniform(-0.4, 0.4)
    angle = (pan + 1.0) * np.pi / 4.0
    return np.stack([np.cos(angle) * x, np.sin(angle) * x]) * np.sqrt(2.0)


def mix_stems(
    stems: dict[str, np.ndarray], order: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """float32 stems scaled so the mixture peaks below 0.9, and their float32 sum in ``order``."""
    total = sum(stems[k] for k in order)
    scale = min(1.0, 0.9 / (np.abs(total).max() + 1e-12))
    out = {k: (stems[k] * scale).astype(np.float32) for k in order}
    mixture = out[order[0]].copy()
    for k in order[1:]:
        mixture += out[k]  # (C, L) float32, the exact sum written to disk
    return out, mixture


def musdb_track(seed: int, index: int, duration: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Stereo stems {drums, bass, other, vocals} (C=2, L) and their mixture for one MUSDB-layout track."""
    rng = np.random.default_rng([seed, 1, index])
    n, song = int(round(duration * SR)), make_song(rng)
    raw = {
        "drums": (drums_stem(rng, song, n), -20.0),
        "bass": (bass_stem(rng, song, n), -22.0),
        "other": (pad_stem(rng, song, n), -24.0),
        "vocals": (vocals_stem(rng, song, n), -21.0),
    }
    stems = {k: finish_stem(rng, x, lvl, 2) for k, (x, lvl) in raw.items()}
    return mix_stems(stems, MUSDB_FILE_ORDER)


def dnr_track(seed: int, index: int, duration: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Mono stems {speech, music, sfx} (C=1, L) and their mixture for one DnR-layout track."""
    rng = np.random.default_rng([seed, 2, index])
    n, song = int(round(duration * SR)), make_song(rng)
    music = (
        drums_stem(rng, song, n) * 0.5
        + bass_stem(rng, song, n) * 0.3
        + pad_stem(rng, song, n) * 0.3
    )
    raw = {
        "speech": (speech_stem(rng, n), -20.0),
        "music": (music, -25.0),
        "sfx": (sfx_stem(rng, n), -24.0),
    }
    stems = {k: finish_stem(rng, x, lvl, 1) for k, (x, lvl) in raw.items()}
    return mix_stems(stems, DNR_FILE_ORDER)


def write_track(
    folder: Path, mixture_name: str, stems: dict[str, np.ndarray], mixture: np.ndarray
) -> None:
    write_wav(folder / f"{mixture_name}.wav", mixture)
    for name, audio in stems.items():
        write_wav(folder / f"{name}.wav", audio)


def musdb_plan(cfg: SynthConfig) -> list[tuple[str, str, int]]:
    """(folder, track name, generator index) of every track of a MUSDB-layout demo dataset."""
    plan = [
        ("train", f"Demo Band {i:02d} - Song {i:02d}", i)
        for i in range(cfg.num_train + cfg.num_valid)
    ]
    base = cfg.num_train + cfg.num_valid
    return plan + [
        ("test", f"Demo Band {base + i:02d} - Song {base + i:02d}", base + i)
        for i in range(cfg.num_test)
    ]


def dnr_plan(cfg: SynthConfig) -> list[tuple[str, str, int]]:
    counts = (("tr", cfg.num_train), ("cv", cfg.num_valid), ("tt", cfg.num_test))
    plan, index = [], 0
    for folder, count in counts:
        for _ in range(count):
            plan.append((folder, f"{index:05d}", index))
            index += 1
    return plan


def generate(
    task: str, out: str | Path, cfg: SynthConfig = SynthConfig(), progress: bool = True
) -> Path:
    """Generate a demo dataset for ``task`` (``mss``: MUSDB layout; ``cass``: DnR layout) at ``out``.

    The dataset is written into a temporary folder beside ``out`` and renamed at the end, so an
    interrupted run never leaves a folder that looks complete. ``out`` must not exist yet.

    Returns:
        ``out`` as a Path.
    """
    if task not in ("mss", "cass"):
        raise UserError(f"unknown task {task!r}: expected 'mss' or 'cass'")
    out = Path(out)
    if out.exists():
        raise UserError(
            f"{out} already exists; refusing to overwrite (remove it or choose another --out)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        _generate_into(task, tmp, cfg, progress)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _generate_into(task: str, root: Path, cfg: SynthConfig, progress: bool) -> None:
    plan = musdb_plan(cfg) if task == "mss" else dnr_plan(cfg)
    make = musdb_track if task == "mss" else dnr_track
    for folder, name, index in tqdm(plan, desc=f"generate {task}", disable=not progress):
        stems, mixture = make(cfg.seed, index, cfg.duration)
        write_track(root / folder / name, MIXTURE_FILE[task], stems, mixture)
    if task == "mss":
        valid = [name for _, name, i in plan if cfg.num_train <= i < cfg.num_train + cfg.num_valid]
        write_text_atomic(root / VALID_LIST_FILE, "".join(f"{v}\n" for v in valid))
    meta = {"generator": "sfc.data.synth", "task": task, **asdict(cfg), "sample_rate": SR}
    write_text_atomic(root / "synth.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
