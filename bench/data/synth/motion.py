"""What the face does over time: speech articulation, emotion, blinks, head motion.

Everything is computed first on a 1 ms time grid (``Performance``) and then sampled at the
frame times of the video being rendered (``Performance.at``), so a 25 fps and a 30 fps
rendering of the same clip show the same motion.

Articulation. Every eSpeak phoneme has a target (``VISEMES``: jaw opening, bilabial closure,
lip spread, lip rounding); targets sit at the phoneme's temporal centre, are joined linearly
and smoothed (Gaussian, 20 ms; closure 10 ms). The jaw channel is the viseme jaw scaled by
the speech energy envelope (RMS in 25 ms windows, normalised to the clip's 98th percentile):
``jaw = viseme_jaw * (0.55 + 0.6 * energy) * emotion_gain``. The inner-lip gap opens with
``jaw * (1 - closure)``, so /p b m/ shut the lips even with the jaw slightly open.

Emotion (``EMOTION_FACE``, FACS-style channels in [0, 1], times an intensity factor):
HAP smile (AU12) with raised lower lids (AU6); SAD inner brows up (AU1) with a little brow
lowering (AU4), mouth corners down (AU15), drooping lids; ANG brows down and together (AU4),
tightened lids (AU7), tightened lip corners (AU14); FEA brows up and together (AU1+2+4),
upper lids raised (AU5), lips stretched (AU20); DIS upper lip raised (AU10), brows lowered,
corners slightly down. The expression ramps from 60% to full over the first 0.4 s and
fluctuates by about 8%.

AU occurrence (``au_states``), per frame, from the synthesis channels:
AU10 = upper_lip >= 0.5; AU14 = dimple >= 0.5; AU20 = spread + stretch >= 0.5;
AU25 = inner-lip gap of the synthesised landmarks >= 0.06 eye distances;
AU26 = jaw >= 0.45.

Blinks: inter-blink gaps ``max(0.6, Gamma(4, 0.7))`` s (mean about 2.8 s, i.e. about 0.35
blinks/s), durations uniform in [0.2, 0.4] s, closure profile: 40% closing (ease-in),
20% fully shut, 40% opening; blinks lie wholly inside the clip (0.1 s margins).

Head motion: in-plane rotation of at most about 1.5 degrees, translation of a few pixels and
scale within 1%, each a sum of three slow sinusoids (0.1-0.6 Hz) plus a small nod with the
speech energy. Yaw and pitch are not synthesised (zero in the truth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench import AUDIO_RATE

# phoneme -> (jaw, closure, spread, round); eSpeak NG English mnemonics, stress marks removed
_V = {
    "open": (0.95, 0.0, 0.1, 0.0), "open_round": (0.85, 0.0, 0.0, 0.45),
    "mid": (0.55, 0.0, 0.15, 0.0), "schwa": (0.4, 0.0, 0.0, 0.0),
    "close_spread": (0.25, 0.0, 0.8, 0.0), "mid_spread": (0.5, 0.0, 0.6, 0.0),
    "close_round": (0.3, 0.0, 0.0, 0.85), "mid_round": (0.5, 0.0, 0.0, 0.7),
    "bilabial": (0.08, 1.0, 0.0, 0.0), "labiodental": (0.12, 0.65, 0.0, 0.0),
    "dental": (0.2, 0.0, 0.1, 0.0), "alveolar": (0.2, 0.0, 0.1, 0.0),
    "sibilant": (0.12, 0.0, 0.4, 0.0), "postalveolar": (0.2, 0.0, 0.0, 0.6),
    "velar": (0.3, 0.0, 0.0, 0.0), "glottal": (0.45, 0.0, 0.0, 0.0),
    "r": (0.25, 0.0, 0.0, 0.4), "w": (0.15, 0.0, 0.0, 0.9), "j": (0.2, 0.0, 0.4, 0.0),
    "pause": (0.0, 0.3, 0.0, 0.0),
}
VISEMES: dict[str, tuple[float, float, float, float]] = {}
for _names, _cls in (
    ("a a# A: A@ aa aI aI@ aU aU@ V a@ A", "open"), ("0 O O: O@ 0# o@", "open_round"),
    ("E e e@ 3 3: 3:r @L", "mid"), ("@ @2 @5 @r I# I2#", "schwa"),
    ("i i: I I2 i@ I@ i@3", "close_spread"), ("eI", "mid_spread"),
    ("u: U U@ u@", "close_round"), ("oU OI o", "mid_round"),
    ("p b m", "bilabial"), ("f v", "labiodental"), ("T D", "dental"),
    ("t d n l t# d# t2 d2 n- l/ l# L", "alveolar"), ("s z", "sibilant"),
    ("S Z tS dZ", "postalveolar"), ("k g N x", "velar"), ("h ?", "glottal"),
    ("r r- R", "r"), ("w W", "w"), ("j", "j"), ("_ _: _! _^_ ||", "pause"),
):
    for _name in _names.split():
        VISEMES[_name] = _V[_cls]


def viseme(phoneme: str) -> tuple[float, float, float, float]:
    """Articulation target of an eSpeak phoneme mnemonic (stress marks ignored)."""
    name = phoneme.strip().lstrip("',%=")
    if name in VISEMES:
        return VISEMES[name]
    for cut in range(len(name) - 1, 0, -1):  # longest known prefix ("aI@3" -> "aI@")
        if name[:cut] in VISEMES:
            return VISEMES[name[:cut]]
    if name[:1] in "aAeEiIoOuUV03@":
        return _V["mid"]
    return _V["alveolar"]


EMOTION_FACE: dict[str, dict[str, float]] = {
    "NEU": {},
    "HAP": {"smile": 0.9, "cheek": 0.6, "brow_outer_up": 0.1},
    "SAD": {"brow_inner_up": 0.9, "brow_lower": 0.3, "corner_down": 0.8, "lid_raise": -0.5},
    "ANG": {"brow_lower": 1.0, "lid_tight": 0.6, "dimple": 0.75, "lid_raise": 0.2},
    "FEA": {"brow_inner_up": 0.8, "brow_outer_up": 0.8, "brow_lower": 0.25, "lid_raise": 0.9,
            "stretch": 0.8},
    "DIS": {"upper_lip": 0.85, "brow_lower": 0.5, "corner_down": 0.3, "lid_tight": 0.4},
}
"""Expression channels of each emotion at full intensity."""

JAW_GAIN = {"NEU": 1.0, "HAP": 1.08, "SAD": 0.75, "ANG": 1.2, "FEA": 1.0, "DIS": 0.9}
INTENSITY = {"LO": 0.6, "MD": 0.85, "HI": 1.15, "XX": 1.0}

CHANNELS = ("jaw", "closure", "spread", "round", "smile", "cheek", "corner_down", "upper_lip",
            "dimple", "stretch", "brow_inner_up", "brow_outer_up", "brow_lower", "lid_raise",
            "lid_tight", "blink", "roll_deg", "tx", "ty", "scale")

GRID_HZ = 1000  # internal time grid (1 ms)


@dataclass
class Performance:
    """All synthesis channels on the 1 ms grid."""

    duration_s: float
    channels: dict[str, np.ndarray]  # name -> (N,) on times np.arange(N) / GRID_HZ
    blinks_s: list[tuple[float, float]]  # (start, end) seconds

    def at(self, times_s: np.ndarray) -> dict[str, np.ndarray]:
        """Channels sampled (linear interpolation) at ``times_s``."""
        grid = np.arange(next(iter(self.channels.values())).shape[0]) / GRID_HZ
        return {k: np.interp(times_s, grid, v) for k, v in self.channels.items()}


def _smooth(x: np.ndarray, sigma_ms: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x, sigma_ms * GRID_HZ / 1000, mode="nearest")


def _slow_noise(n: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Sum of three sinusoids of 0.1-0.6 Hz with random phases, peak about ``amplitude``."""
    t = np.arange(n) / GRID_HZ
    out = np.zeros(n)
    for _ in range(3):
        f = rng.uniform(0.1, 0.6)
        out += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.5, 1.0)
    return out * amplitude / 2.0


def energy_envelope(audio: np.ndarray, n: int) -> np.ndarray:
    """RMS of 25 ms windows centred on each ms, normalised to the 98th percentile, in [0, 1]."""
    hop = AUDIO_RATE // GRID_HZ
    win = int(0.025 * AUDIO_RATE)
    padded = np.pad(audio.astype(np.float64) ** 2, (win // 2, win))
    csum = np.concatenate([[0.0], np.cumsum(padded)])
    starts = np.arange(n) * hop
    rms = np.sqrt((csum[starts + win] - csum[starts]) / win)
    ref = np.percentile(rms, 98)
    return np.clip(rms / ref, 0, 1) if ref > 0 else np.zeros(n)


def articulation(phonemes: list[tuple[int, str]], end_ms: int, offset_ms: int, n: int
                 ) -> dict[str, np.ndarray]:
    """Viseme channels (jaw, closure, spread, round) on the ms grid from phoneme timing."""
    centres, targets = [0.0], [_V["pause"]]
    starts = [p[0] + offset_ms for p in phonemes] + [end_ms + offset_ms]
    for (_, name), start, stop in zip(phonemes, starts[:-1], starts[1:], strict=True):
        centres.append((start + stop) / 2)
        targets.append(viseme(name))
    centres.append(float(n))
    targets.append(_V["pause"])
    t = np.arange(n, dtype=np.float64)
    tg = np.array(targets)
    out = {name: np.interp(t, centres, tg[:, i])
           for i, name in enumerate(("jaw", "closure", "spread", "round"))}
    # closures are short and must be reached: hold the target over the whole phoneme
    hold = np.zeros(n)
    for (_, name), start, stop in zip(phonemes, starts[:-1], starts[1:], strict=True):
        a, b = int(start), int(max(start + 1, stop))
        hold[max(a, 0):min(b, n)] = np.maximum(hold[max(a, 0):min(b, n)], viseme(name)[1])
    out["closure"] = np.maximum(out["closure"], hold)
    for name in ("jaw", "spread", "round"):
        out[name] = _smooth(out[name], 20)
    out["closure"] = _smooth(out["closure"], 10)
    return out


def blink_schedule(duration_s: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Blink (start, end) times in seconds, wholly inside [0.1, duration - 0.1]."""
    blinks = []
    t = rng.uniform(0.1, 2.4)
    while True:
        length = rng.uniform(0.2, 0.4)
        if t + length > duration_s - 0.1:
            break
        blinks.append((float(t), float(t + length)))
        t += length + max(0.6, rng.gamma(4.0, 0.7))
    return blinks


def blink_curve(blinks: list[tuple[float, float]], n: int) -> np.ndarray:
    """Eye closure in [0, 1] on the ms grid: 40% closing, 20% shut, 40% opening."""
    t = np.arange(n) / GRID_HZ
    out = np.zeros(n)
    for start, end in blinks:
        u = (t - start) / (end - start)
        closing = np.clip(u / 0.4, 0, 1)
        opening = np.clip((1 - u) / 0.4, 0, 1)
        c = np.minimum(closing ** 0.7, 1 - (1 - opening) ** 2)
        c[(u < 0) | (u > 1)] = 0
        out = np.maximum(out, np.clip(c, 0, 1))
    return out


def perform(audio: np.ndarray, phonemes: list[tuple[int, str]], end_ms: int, offset_ms: int,
            emotion: str, intensity: str, rng: np.random.Generator) -> Performance:
    """All channels for a clip whose speech (``audio``, 16 kHz) starts at ``offset_ms``."""
    duration_s = audio.shape[0] / AUDIO_RATE
    n = int(round(duration_s * GRID_HZ)) + 1
    ch = articulation(phonemes, end_ms, offset_ms, n)
    energy = _smooth(energy_envelope(audio, n), 15)
    gain = JAW_GAIN.get(emotion, 1.0) * (0.75 + 0.25 * INTENSITY.get(intensity, 1.0))
    ch["jaw"] = np.clip(ch["jaw"] * (0.55 + 0.6 * energy) * gain, 0, 1)

    level = INTENSITY.get(intensity, 1.0)
    t = np.arange(n) / GRID_HZ
    ramp = 0.6 + 0.4 * np.clip(t / 0.4, 0, 1)
    wobble = 1 + _slow_noise(n, rng, 0.08)
    face = EMOTION_FACE.get(emotion, {})
    for name in ("smile", "cheek", "corner_down", "upper_lip", "dimple", "stretch",
                 "brow_inner_up", "brow_outer_up", "brow_lower", "lid_raise", "lid_tight"):
        ch[name] = face.get(name, 0.0) * level * ramp * wobble
    # speech-related brow flashes on stressed syllables
    stress = np.zeros(n)
    for pos, name in phonemes:
        if name.startswith("'"):
            i = int(pos + offset_ms)
            if 0 <= i < n:
                stress[i] = 1.0
    flash = _smooth(stress, 60)
    flash = flash / flash.max() * 0.25 if flash.max() > 0 else flash
    ch["brow_outer_up"] = ch["brow_outer_up"] + flash
    ch["brow_inner_up"] = ch["brow_inner_up"] + 0.5 * flash

    blinks = blink_schedule(duration_s, rng)
    ch["blink"] = blink_curve(blinks, n)

    nod = _smooth(energy, 120)
    ch["roll_deg"] = _slow_noise(n, rng, 1.5)
    ch["tx"] = _slow_noise(n, rng, 3.0)
    ch["ty"] = _slow_noise(n, rng, 2.0) + 1.5 * nod
    ch["scale"] = 1 + _slow_noise(n, rng, 0.01)
    return Performance(duration_s=duration_s, channels=ch, blinks_s=blinks)


def au_states(frame: dict[str, np.ndarray], inner_gap: np.ndarray, eye_distance: float
              ) -> dict[str, np.ndarray]:
    """0/1 occurrence per frame of the speech-related AUs (rule in the module notes)."""
    return {
        "AU10": (frame["upper_lip"] >= 0.5).astype(np.int8),
        "AU14": (frame["dimple"] >= 0.5).astype(np.int8),
        "AU20": (frame["spread"] + frame["stretch"] >= 0.5).astype(np.int8),
        "AU25": (inner_gap >= 0.06 * eye_distance).astype(np.int8),
        "AU26": (frame["jaw"] >= 0.45).astype(np.int8),
    }


def displacements(rest: np.ndarray, f: dict[str, np.ndarray], slit: float) -> np.ndarray:
    """Landmark displacements (T, 68, 2) in rest-canvas px for sampled channels ``f``.

    ``rest`` are the identity's rest landmarks (mouth shut with a ``slit`` px dark gap).
    """
    t = f["jaw"].shape[0]
    e = float(np.hypot(*(rest[42:48].mean(0) - rest[36:42].mean(0))))  # eye distance
    d = np.zeros((t, 68, 2))

    def move(idx, dx=0.0, dy=0.0) -> None:
        d[:, idx, 0] += np.asarray(dx)[:, None] if np.ndim(dx) else dx
        d[:, idx, 1] += np.asarray(dy)[:, None] if np.ndim(dy) else dy

    cx = rest[[27, 30, 33, 51, 57, 8], 0].mean()
    side = np.sign(rest[:, 0] - cx)  # -1 image-left, +1 image-right

    # --- jaw and lips (speech) ---
    jaw, closure = f["jaw"], f["closure"]
    gap = jaw * np.clip(1 - closure, 0, 1) * 0.30 * e  # inner-lip gap (px)
    chin = jaw * 0.22 * e
    weights = {3: 0.12, 4: 0.3, 5: 0.55, 6: 0.78, 7: 0.94, 8: 1.0}
    for k, w in weights.items():
        for idx in {k, 16 - k}:
            move([idx], dx=-(rest[idx, 0] - cx) * 0.05 * jaw, dy=chin * w)
    up_inner = slit / 2 - 0.22 * gap  # rest slit closed, then open 22% upwards
    low_inner = 0.78 * gap - slit / 2
    move([61, 62, 63], dy=up_inner)
    move([65, 66, 67], dy=low_inner)
    move([50, 51, 52], dy=up_inner * 0.9)
    move([49, 53], dy=up_inner * 0.6)
    move([56, 57, 58], dy=low_inner * 0.95 + 0.04 * chin)
    move([55, 59], dy=low_inner * 0.7)
    move([48, 54, 60, 64], dy=low_inner * 0.35)
    for idx in (48, 60, 54, 64):  # corners come in a little as the jaw opens
        move([idx], dx=-side[idx] * 0.04 * e * jaw)

    spread, rnd = f["spread"], f["round"]
    stretch, smile, dimple = f["stretch"], f["smile"], f["dimple"]
    for idx in (48, 54, 60, 64):
        s_ = side[idx]
        move([idx], dx=s_ * e * (0.07 * spread + 0.08 * stretch + 0.06 * smile - 0.11 * rnd
                                 - 0.035 * dimple),
             dy=e * (0.02 * stretch - 0.09 * smile + 0.07 * f["corner_down"]
                     - 0.01 * dimple))
    for idx in (49, 53, 59, 55):
        s_ = side[idx]
        move([idx], dx=s_ * e * (0.04 * spread + 0.04 * stretch + 0.03 * smile - 0.06 * rnd),
             dy=e * (-0.04 * smile + 0.03 * f["corner_down"]))
    # rounding: outer lips pushed out (taller), inner opening a little round
    move([50, 51, 52], dy=-0.03 * e * rnd + 0.012 * e * (spread + stretch))
    move([56, 57, 58], dy=0.03 * e * rnd - 0.012 * e * (spread + stretch))
    # AU10 upper lip raiser (with a little nose wing lift)
    ul = f["upper_lip"]
    move([50, 51, 52], dy=-0.09 * e * ul)
    move([49, 53], dy=-0.06 * e * ul)
    move([61, 62, 63], dy=-0.075 * e * ul)
    move([31, 32, 33, 34, 35], dy=-0.025 * e * ul)

    # --- brows ---
    inner_up, outer_up, lower = f["brow_inner_up"], f["brow_outer_up"], f["brow_lower"]
    for idx, wi, wo in ((21, 1.0, 0.0), (22, 1.0, 0.0), (20, 0.65, 0.25), (23, 0.65, 0.25),
                        (19, 0.3, 0.6), (24, 0.3, 0.6), (18, 0.1, 1.0), (25, 0.1, 1.0),
                        (17, 0.0, 0.9), (26, 0.0, 0.9)):
        wl = 1.0 if idx in (20, 21, 22, 23) else 0.6
        move([idx], dx=-side[idx] * 0.055 * e * lower * (wl - 0.3),
             dy=-0.13 * e * (wi * inner_up + wo * outer_up) + 0.09 * e * lower * wl)

    # --- eyelids (expression), then blink ---
    for upper in (37, 38, 43, 44):
        move([upper], dy=-0.045 * e * f["lid_raise"] + 0.015 * e * f["lid_tight"])
    for lower_lid in (40, 41, 46, 47):
        move([lower_lid], dy=-0.035 * e * f["lid_tight"] - 0.03 * e * f["cheek"])
    blink = f["blink"]
    for up_i, low_i in ((37, 41), (38, 40), (43, 47), (44, 46)):
        open_gap = (rest[low_i, 1] + d[:, low_i, 1]) - (rest[up_i, 1] + d[:, up_i, 1])
        open_gap = np.maximum(open_gap, 0)
        d[:, up_i, 1] += 0.85 * open_gap * blink
        d[:, low_i, 1] -= 0.15 * open_gap * blink
    return d


def pose_matrices(f: dict[str, np.ndarray], center: tuple[float, float]) -> np.ndarray:
    """(T, 2, 3) head-motion affine maps (rotation and scale about ``center``, translation)."""
    from bench.data.synth.warp import similarity

    return np.stack([similarity(s, np.deg2rad(r), x, y, center)
                     for s, r, x, y in zip(f["scale"], f["roll_deg"], f["tx"], f["ty"],
                                           strict=True)])
