"""`SyntheticFaces`: people, factor sampling and data sets of rendered faces; `load_synthetic`.

Identity ``k`` is person ``k``: a fixed draw of the ten identity parameters, deterministic
from the seed and the same whatever ``n_identities`` is. Same seed, same arguments -> bit-identical images.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from facelib.utils import check_memory

from ..dataset import FaceDataset
from ..datasets import register_dataset
from .factors import IDENTITY_PARAMS, IDENTITY_RANGES, NEUTRAL, NUISANCE_FACTORS, FactorRanges
from .render import HeadRenderer

__all__ = ["SyntheticFaces", "load_synthetic"]

_DEFAULT_LEVELS = {"yaw": 10, "pitch": 10, "light_azimuth": 10, "light_elevation": 10, "expression": 10}
_SIZES = range(32, 257, 16)


class SyntheticFaces:
    """Sampler of synthetic faces (rendered by its `HeadRenderer`); also a factor source for the metrics.

    Args:
        size: output image side, a multiple of 16 from 32 to 256.
        channels: 1 (gray) or 3 (colour).
        n_identities: number of people; person k is a fixed draw of `IDENTITY_PARAMS`.
        seed: fixes the people and (with each call's own seed) every sample.
        levels: discrete levels per nuisance factor for the metrics protocol, e.g.
            ``{"yaw": 10, "pitch": 5}``; its keys (in `NUISANCE_FACTORS` order) become the
            factors after "identity" in `factor_names`; unlisted factors stay neutral there.
        ranges: a `FactorRanges` (or a dict of (low, high)) for the per-image factors.
        supersample: render at this multiple of `size` and area-downsample (anti-aliasing);
            1 (the default) keeps the speed goal, 2 gives smoother edges at a third the rate.
        cache_mb: memory kept for cached per-person head models.
        threads: torch threads while rendering (set, then restored afterwards); None keeps
            torch's setting. The default 1: splatting is memory-bound, and on a busy shared
            2-core machine two OpenMP threads measured some 40x slower than one.
    """

    def __init__(
        self,
        size: int = 64,
        channels: int = 1,
        n_identities: int = 100,
        seed: int = 0,
        levels: Mapping[str, int] | None = None,
        ranges: FactorRanges | Mapping[str, Any] | None = None,
        supersample: int = 1,
        cache_mb: float = 512.0,
        threads: int | None = 1,
    ):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size not in _SIZES:
            raise ValueError(f"size must be a multiple of 16 from 32 to 256 (e.g. 64), got {size!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (gray) or 3 (colour), got {channels!r}")
        if isinstance(n_identities, bool) or not isinstance(n_identities, (int, np.integer)) or n_identities < 1:
            raise ValueError(f"n_identities must be a positive integer, got {n_identities!r}")
        if supersample not in (1, 2, 3, 4):
            raise ValueError(f"supersample must be 1, 2, 3 or 4, got {supersample!r}")
        self.size, self.channels, self.n_identities = int(size), int(channels), int(n_identities)
        self.seed, self.supersample = int(seed), int(supersample)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
            raise ValueError(f"threads must be None (torch's setting) or a positive integer, got {threads!r}")
        self.threads = None if threads is None else int(threads)
        if ranges is None:
            ranges = FactorRanges()
        elif not isinstance(ranges, FactorRanges):
            ranges = FactorRanges.from_options(**dict(ranges))
        self.ranges = ranges
        levels = dict(_DEFAULT_LEVELS if levels is None else levels)
        bad = sorted(set(levels) - set(NUISANCE_FACTORS))
        if bad:
            raise ValueError(f"levels has unknown factor(s) {bad}; choose from {', '.join(NUISANCE_FACTORS)}")
        for k, n in levels.items():
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"levels[{k!r}] must be a positive integer, got {n!r}")
        self.levels = {k: int(levels[k]) for k in NUISANCE_FACTORS if k in levels}
        check_memory(8.0 * self.n_identities * len(IDENTITY_PARAMS), f"n_identities={self.n_identities} people",
                     "ask for fewer people")
        rng = np.random.default_rng([self.seed, 0x1D])
        lo = np.array([IDENTITY_RANGES[p][0] for p in IDENTITY_PARAMS])
        hi = np.array([IDENTITY_RANGES[p][1] for p in IDENTITY_PARAMS])
        #: (n_identities, 10) identity parameters; row k is person k.
        self.people = lo + (hi - lo) * rng.random((self.n_identities, len(IDENTITY_PARAMS)))
        #: the rasteriser, with its cache of per-person head models
        self.renderer = HeadRenderer(self.size, self.channels, self.supersample, self.threads, cache_mb)

    def __repr__(self) -> str:
        return (f"SyntheticFaces(size={self.size}, channels={self.channels}, n_identities={self.n_identities}, "
                f"seed={self.seed}, supersample={self.supersample})")

    # -- metrics factor-source protocol ------------------------------------------------
    @property
    def factor_names(self) -> list[str]:
        """"identity" followed by the nuisance factors that have levels."""
        return ["identity", *self.levels]

    @property
    def factor_sizes(self) -> list[int]:
        """Discrete levels per factor: n_identities, then each nuisance factor's levels."""
        return [self.n_identities, *self.levels.values()]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform random codes (n, K); column k in 0 .. factor_sizes[k] - 1."""
        n = _check_n(n)
        return np.stack([rng.integers(0, s, size=n) for s in self.factor_sizes], axis=1).astype(np.int64)

    def codes_to_factors(self, codes: np.ndarray) -> pd.DataFrame:
        """Factor values of integer codes: level j of L is low + (high - low) * j / (L - 1)."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != len(self.factor_sizes) or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"codes must be an integer array (n, {len(self.factor_sizes)}) "
                             f"with columns {self.factor_names}, got shape {codes.shape} {codes.dtype}")
        sizes = np.asarray(self.factor_sizes)
        if codes.size and ((codes < 0) | (codes >= sizes)).any():
            raise ValueError(f"codes out of range: column k must lie in 0 .. factor_sizes[k]-1 = {list(sizes - 1)}")
        out = {"identity": codes[:, 0]}
        for j, name in enumerate(self.levels, start=1):
            lo, hi = getattr(self.ranges, name)
            L = self.levels[name]
            out[name] = lo + (hi - lo) * (codes[:, j] / (L - 1) if L > 1 else 0.5)
        return pd.DataFrame(out)

    def render_codes(self, codes: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """Images of integer factor codes (identity code k = person k); `rng` is not needed."""
        return self.render(self.codes_to_factors(codes))

    # -- rendering ---------------------------------------------------------------------
    def _factor_table(self, factors: Any) -> pd.DataFrame:
        if isinstance(factors, (np.ndarray, torch.Tensor)):
            arr = np.asarray(factors)
            if arr.ndim == 2 and np.issubdtype(arr.dtype, np.integer):
                return self.codes_to_factors(arr)
            raise ValueError("render takes a factors DataFrame / dict of arrays, or integer codes (n, K)")
        if isinstance(factors, Mapping):
            factors = pd.DataFrame({k: np.atleast_1d(np.asarray(v)) for k, v in factors.items()})
        if not isinstance(factors, pd.DataFrame):
            raise TypeError(f"render takes a DataFrame or dict of factor arrays, got {type(factors).__name__}")
        known = {"identity", *IDENTITY_PARAMS, *NUISANCE_FACTORS}
        unknown = sorted(set(map(str, factors.columns)) - known)
        if unknown:
            raise ValueError(f"unknown factor(s) {unknown}; known factors are identity, "
                             f"{', '.join(IDENTITY_PARAMS)}, {', '.join(NUISANCE_FACTORS)}")
        return factors

    def identity_params(self, factors: pd.DataFrame) -> np.ndarray:
        """(n, 10) identity parameters of each row: its own columns, else person `identity`."""
        n = len(factors)
        have = [p in factors.columns for p in IDENTITY_PARAMS]
        if all(have):
            theta = factors[list(IDENTITY_PARAMS)].to_numpy(dtype=np.float64)
        elif "identity" in factors.columns:
            ids = factors["identity"].to_numpy()
            if not np.issubdtype(ids.dtype, np.integer) or (n and (ids.min() < 0 or ids.max() >= self.n_identities)):
                raise ValueError(f"identity must be integers in 0 .. {self.n_identities - 1} (n_identities)")
            theta = self.people[ids].copy()
            for j, p in enumerate(IDENTITY_PARAMS):
                if have[j]:
                    theta[:, j] = factors[p].to_numpy(dtype=np.float64)
        else:
            raise ValueError("factors need an `identity` column or all identity parameters "
                             f"({', '.join(IDENTITY_PARAMS)})")
        if not np.isfinite(theta).all():
            raise ValueError("identity parameters must be finite")
        return theta

    def render(self, factors: Any, rng: np.random.Generator | None = None, *,
               return_landmarks: bool = False, chunk: int | None = None):
        """uint8 images (N x C x H x W) of factor values (DataFrame / dict) or integer codes.

        Missing per-image factors take `NEUTRAL` values (frontal, light from the front and
        20 degrees above, neutral expression, no jitter). With `return_landmarks`, also
        returns (N, 4, 2) float32 pixel coordinates (x, y) of `LANDMARKS`, origin at the
        top-left image corner, computed from the same projected geometry. `chunk` is the
        renderer's (`HeadRenderer.render`); it does not change the result.
        """
        table = self._factor_table(factors)
        n = len(table)
        theta = self.identity_params(table)
        nuis = {}
        for name in NUISANCE_FACTORS:
            val = table[name].to_numpy(dtype=np.float64) if name in table.columns else np.full(n, NEUTRAL[name])
            if not np.isfinite(val).all():
                raise ValueError(f"factor {name} has non-finite values")
            nuis[name] = val
        images, marks = self.renderer.render(theta, nuis, chunk)
        return (images, marks) if return_landmarks else images

    # -- sampling ----------------------------------------------------------------------
    def _rng(self, seed: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(seed), stream])

    def _draw(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """n independent factor rows: a random person and uniform per-image factors."""
        cols: dict[str, np.ndarray] = {"identity": rng.integers(0, self.n_identities, size=n)}
        for name in NUISANCE_FACTORS:
            lo, hi = getattr(self.ranges, name)
            cols[name] = lo + (hi - lo) * rng.random(n)
        return pd.DataFrame(cols)

    def _complete(self, table: pd.DataFrame) -> pd.DataFrame:
        """Full factor table: identity, its parameters, then the per-image factors."""
        table = table.reset_index(drop=True)
        theta = self.people[table["identity"].to_numpy()]
        out = pd.DataFrame({"identity": table["identity"].to_numpy(dtype=np.int64)})
        for j, p in enumerate(IDENTITY_PARAMS):
            out[p] = theta[:, j]
        for name in NUISANCE_FACTORS:
            out[name] = table[name].to_numpy(dtype=np.float64)
        return out

    def _dataset(self, table: pd.DataFrame, options: dict[str, Any], groups=None, varying=None) -> FaceDataset:
        factors = self._complete(table)
        images = self.render(factors)
        meta = {
            "generator": "facelib.data.synthetic",
            "options": {"size": self.size, "channels": self.channels, "n_identities": self.n_identities,
                        "seed": self.seed, "supersample": self.supersample, **options},
            "ranges": {k: list(v) for k, v in asdict(self.ranges).items()},
            "identity_ranges": {k: list(v) for k, v in IDENTITY_RANGES.items()},
        }
        return FaceDataset(images=images, identity=factors["identity"].to_numpy(), factors=factors,
                           name="synthetic", groups=groups, group_varying=varying, meta=meta)

    def sample(self, n: int, seed: int = 0) -> FaceDataset:
        """n images with independent random people, poses, lights and expressions."""
        n = _check_n(n)
        check_memory(float(n) * self.channels * self.size**2, f"n={n} faces of {self.channels} x {self.size} x "
                     f"{self.size} px", "ask for fewer faces or a smaller size")
        return self._dataset(self._draw(n, self._rng(seed, 1)), {"n": n, "sample_seed": int(seed)})

    def _check_factor(self, factor: str, allow_nuisance: bool = False) -> str:
        names = ["identity", *NUISANCE_FACTORS] + (["nuisance"] if allow_nuisance else [])
        if factor not in names:
            raise ValueError(f"unknown factor {factor!r}; choose one of {', '.join(names)}")
        return factor

    def _vary(self, table: pd.DataFrame, factor: str, rng: np.random.Generator) -> pd.DataFrame:
        """`table` (a repeated base row) with `factor` redrawn per row (for identity: distinct people)."""
        n = len(table)
        table = table.copy()
        if factor == "identity":
            replace = n > self.n_identities
            table["identity"] = rng.choice(self.n_identities, size=n, replace=replace)
        elif factor == "nuisance":
            fresh = self._draw(n, rng)
            for name in NUISANCE_FACTORS:
                table[name] = fresh[name].to_numpy()
        else:
            lo, hi = getattr(self.ranges, factor)
            table[factor] = lo + (hi - lo) * rng.random(n)
        return table

    def _varying_table(self, factor: str, batch_size: int, rng: np.random.Generator) -> pd.DataFrame:
        base = self._draw(1, rng)
        return self._vary(base.loc[np.zeros(batch_size, dtype=int)].reset_index(drop=True), factor, rng)

    def sample_varying(self, factor: str, batch_size: int, seed: int = 0) -> FaceDataset:
        """A batch in which only `factor` varies; every other factor is one fresh random draw.

        `factor` is "identity" (different people, same pose, light and expression), any of
        `NUISANCE_FACTORS`, or "nuisance" (one person, everything else varies).
        """
        self._check_factor(factor, allow_nuisance=True)
        batch_size = _check_n(batch_size, "batch_size")
        table = self._varying_table(factor, batch_size, self._rng(seed, 2))
        return self._dataset(table, {"varying": factor, "batch_size": batch_size, "sample_seed": int(seed)},
                             groups=np.zeros(batch_size, dtype=np.int64),
                             varying=np.array([factor] * batch_size, dtype=object))

    def sample_holding(self, factor: str, batch_size: int, seed: int = 0) -> FaceDataset:
        """A batch in which `factor` has one random value and all other factors are random.

        (The metrics' `sample_fixed(k, value, n, rng)` is not needed here: the factor grid is
        complete, so they overwrite a column of `sample_factors`.)
        """
        self._check_factor(factor)
        batch_size = _check_n(batch_size, "batch_size")
        rng = self._rng(seed, 3)
        table = self._draw(batch_size, rng)
        value = self._draw(1, rng)[factor].iloc[0]
        table[factor] = value
        return self._dataset(table, {"fixed": factor, "batch_size": batch_size, "sample_seed": int(seed)})

    def sample_grouped(self, n: int, group_size: int = 8, group_factor: str = "all", seed: int = 0) -> FaceDataset:
        """n images in groups of `group_size` sharing all factors but one (ModVAE / DC-IGN).

        `group_factor` names the varying factor, or "all" to rotate through "identity" and
        the per-image factors group by group (scale/tx/ty only if they have `levels`).
        """
        n = _check_n(n)
        if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or group_size < 2:
            raise ValueError(f"group_size must be an integer >= 2, got {group_size!r}")
        if group_factor == "all":
            cycle = [f for f in ["identity", *NUISANCE_FACTORS] if f in ("identity", *self.levels)]
        else:
            cycle = [self._check_factor(group_factor, allow_nuisance=True)]
        rng = self._rng(seed, 4)
        tables, gid, varying = [], [], []
        for g, start in enumerate(range(0, n, group_size)):
            m = min(group_size, n - start)
            factor = cycle[g % len(cycle)]
            tables.append(self._varying_table(factor, m, rng))
            gid.append(np.full(m, g, dtype=np.int64))
            varying += [factor] * m
        table = pd.concat(tables, ignore_index=True)
        return self._dataset(table, {"n": n, "group_size": int(group_size), "group_factor": group_factor,
                                     "sample_seed": int(seed)},
                             groups=np.concatenate(gid), varying=np.array(varying, dtype=object))


def _check_n(n: Any, what: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{what} must be a positive integer number of images, got {n!r}")
    return int(n)


@register_dataset("synthetic", channels=(1, 3), extra_options=[f.name for f in fields(FactorRanges)])
def load_synthetic(
    *,
    n: int = 2000,
    size: int = 64,
    channels: int = 1,
    seed: int = 0,
    n_identities: int = 100,
    group_size: int | None = None,
    group_factor: str | None = None,
    supersample: int = 1,
    threads: int | None = 1,
    **ranges: Any,
) -> FaceDataset:
    """Rendered faces with known factors (`facelib.data.load("synthetic", ...)`).

    Without grouping, images are independent draws. With `group_size` and/or
    `group_factor` (defaults 8 and "all") the set comes in groups in which only one factor
    varies, and `groups` / `group_varying` are set for ModVAE training. Extra keywords set
    factor ranges, e.g. ``yaw=(-30, 30)`` (see `FactorRanges`); `supersample` and `threads`
    are as in `SyntheticFaces`.
    """
    n = _check_n(n)
    faces = SyntheticFaces(size=size, channels=channels, n_identities=n_identities, seed=seed,
                           ranges=FactorRanges.from_options(**ranges), supersample=supersample, threads=threads)
    if group_size is None and group_factor is None:
        return faces.sample(n, seed=seed)
    return faces.sample_grouped(n, group_size=8 if group_size is None else group_size,
                                group_factor="all" if group_factor is None else group_factor, seed=seed)
