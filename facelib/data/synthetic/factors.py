"""The synthetic faces' factors: names, ranges and neutral values (no rendering here).

Factors and their ranges (all continuous; see `IDENTITY_RANGES` and `FactorRanges`):

=================  ==============  ===========================================================
factor             range           meaning
=================  ==============  ===========================================================
face_width         -1 .. 1         skull width (+-12 %)
face_length        -1 .. 1         head length (+-8 %), also lowers the mouth
jaw                -1 .. 1         jaw width (-1 = narrow, tapered chin)
nose_length        -1 .. 1         nose length and projection
nose_width         -1 .. 1         nose and alae width
eye_spacing        -1 .. 1         distance between the eyes (+-15 %)
brow_height        -1 .. 1         height of the brow ridge and eyebrows
lip_fullness       -1 .. 1         lip thickness and protrusion
skin_tone          0 .. 1          0 = light, 1 = dark
hair_darkness      0 .. 1          0 = blond, 1 = black
yaw                -45 .. 45 deg   positive turns the face to the image's right
pitch              -20 .. 20 deg   positive tilts the face up
light_azimuth      -90 .. 90 deg   positive lights from the image's right
light_elevation    -20 .. 50 deg   positive lights from above
expression         0 .. 1          0 = neutral, 1 = open-mouthed smile, brows raised
scale              0.92 .. 1.08    size jitter
tx, ty             -0.05 .. 0.05   shift as a fraction of the image width (ty positive = up)
=================  ==============  ===========================================================

Identity ``k`` is person ``k``: a fixed draw of the ten identity parameters, deterministic
from the seed and the same whatever ``n_identities`` is. Same seed, same arguments -> bit-identical images.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

import pandas as pd

__all__ = ["IDENTITY_PARAMS", "IDENTITY_RANGES", "NUISANCE_FACTORS", "LANDMARKS", "NEUTRAL", "NO_JITTER", "FactorRanges",
           "MONTAGE_COLUMNS", "montage_factors"]

#: Per-person shape and albedo parameters, in the order of the identity table.
IDENTITY_PARAMS: tuple[str, ...] = (
    "face_width", "face_length", "jaw", "nose_length", "nose_width",
    "eye_spacing", "brow_height", "lip_fullness", "skin_tone", "hair_darkness",
)
#: Range of each identity parameter (people are drawn uniformly inside it).
IDENTITY_RANGES: dict[str, tuple[float, float]] = {
    **{p: (-1.0, 1.0) for p in IDENTITY_PARAMS[:8]},
    "skin_tone": (0.0, 1.0),
    "hair_darkness": (0.0, 1.0),
}
#: Per-image factors (pose, light, expression, jitter), in table order.
NUISANCE_FACTORS: tuple[str, ...] = (
    "yaw", "pitch", "light_azimuth", "light_elevation", "expression", "scale", "tx", "ty",
)
#: Landmarks returned by ``render(..., return_landmarks=True)``, in this order.
LANDMARKS: tuple[str, ...] = ("nose_tip", "left_eye", "right_eye", "mouth")

#: Values of the per-image factors a render takes when a factor is not given (frontal, lit from
#: the front and 20 degrees above, neutral expression, no jitter).
NEUTRAL = {"yaw": 0.0, "pitch": 0.0, "light_azimuth": 0.0, "light_elevation": 20.0,
           "expression": 0.0, "scale": 1.0, "tx": 0.0, "ty": 0.0}
#: Factor ranges (keywords of `load_synthetic`) that pin the scale / shift jitter at the neutral
#: values the metrics' factor source renders with, so a model whose disentanglement is scored
#: can train on such faces: otherwise it must spend latents on three generative factors that no
#: metric scores.
NO_JITTER: dict[str, tuple[float, float]] = {k: (NEUTRAL[k], NEUTRAL[k]) for k in ("scale", "tx", "ty")}


@dataclass(frozen=True)
class FactorRanges:
    """(low, high) of each per-image factor; angles in degrees, shifts in image widths."""

    yaw: tuple[float, float] = (-45.0, 45.0)
    pitch: tuple[float, float] = (-20.0, 20.0)
    light_azimuth: tuple[float, float] = (-90.0, 90.0)
    light_elevation: tuple[float, float] = (-20.0, 50.0)
    expression: tuple[float, float] = (0.0, 1.0)
    scale: tuple[float, float] = (0.92, 1.08)
    tx: tuple[float, float] = (-0.05, 0.05)
    ty: tuple[float, float] = (-0.05, 0.05)

    def __post_init__(self) -> None:
        limits = {"yaw": 80, "pitch": 45, "light_azimuth": 180, "light_elevation": 90}
        for f in fields(self):
            value = getattr(self, f.name)
            try:
                lo, hi = (float(v) for v in value)
            except (TypeError, ValueError):
                raise ValueError(f"range {f.name} must be a (low, high) pair of numbers, got {value!r}") from None
            if not lo <= hi:
                raise ValueError(f"range {f.name}=({lo}, {hi}) needs low <= high")
            lim = limits.get(f.name)
            if lim is not None and max(abs(lo), abs(hi)) > lim:
                raise ValueError(f"range {f.name}=({lo}, {hi}) must stay within +-{lim} degrees")
            if f.name == "expression" and not (0 <= lo and hi <= 1):
                raise ValueError(f"range expression=({lo}, {hi}) must lie in [0, 1]")
            if f.name == "scale" and not (0.5 <= lo and hi <= 1.5):
                raise ValueError(f"range scale=({lo}, {hi}) must lie in [0.5, 1.5]")
            if f.name in ("tx", "ty") and max(abs(lo), abs(hi)) > 0.3:
                raise ValueError(f"range {f.name}=({lo}, {hi}) must stay within +-0.3 image widths")
            object.__setattr__(self, f.name, (lo, hi))

    @classmethod
    def from_options(cls, **ranges: Any) -> "FactorRanges":
        """Build from keyword ranges, naming the accepted keys when one is unknown."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(ranges) - set(known))
        if unknown:
            raise TypeError(
                f"unknown synthetic option(s) {unknown}; factor ranges are set with "
                f"{', '.join(known)} = (low, high)"
            )
        return cls(**ranges)


#: Columns of the README montage: (label, per-image factor overrides).
MONTAGE_COLUMNS: list[tuple[str, dict[str, float]]] = [
    ("yaw -40", {"yaw": -40}), ("yaw -20", {"yaw": -20}), ("frontal", {}), ("yaw 20", {"yaw": 20}),
    ("yaw 40", {"yaw": 40}), ("pitch -18", {"pitch": -18}), ("pitch 18", {"pitch": 18}),
    ("light -80", {"light_azimuth": -80}), ("light 80", {"light_azimuth": 80}),
    ("light low", {"light_elevation": -20}), ("smile .5", {"expression": 0.5}), ("smile 1", {"expression": 1.0}),
]


def montage_factors(people: Sequence[int]) -> pd.DataFrame:
    """Factor table of the montage: one row per person, one column per `MONTAGE_COLUMNS`."""
    rows = []
    for p in people:
        for _, over in MONTAGE_COLUMNS:
            rows.append({"identity": int(p), **{k: float(NEUTRAL[k]) for k in NUISANCE_FACTORS}, **over})
    return pd.DataFrame(rows)
