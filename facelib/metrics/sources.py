"""Factor sources: where the metrics get images with known, discrete generative factors.

The supervised metrics need to (a) sample factor codes, (b) fix one factor and sample the
rest, and (c) render images of given codes. A *factor source* provides exactly that:

- ``factor_names`` (list of str) and ``factor_sizes`` (discrete levels per factor);
- ``sample_factors(n, rng) -> int64 codes (n, K)``, code ``k`` in ``0 .. factor_sizes[k]-1``;
- ``render_codes(codes, rng) -> uint8 images N x C x H x W`` (``render`` is accepted as well);
- optionally ``sample_fixed(k, value, n, rng)`` for sources whose factor grid is incomplete;
  ``value`` is one code or one per row. That is the one meaning of ``sample_fixed`` in facelib.

Fixing a factor follows disentanglement_lib: draw ``sample_factors`` and overwrite column ``k``.
That is only valid when every combination of codes exists. Real data (Extended Yale B) has
holes, so such a source implements ``sample_fixed`` and the metrics use it when present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from facelib.data.yaleb import load_yaleb

__all__ = [
    "FactorSource",
    "ToySource",
    "DatasetSource",
    "YaleBSource",
    "check_source",
    "render",
    "sample_fixed",
    "ground_truth_representation",
    "random_representation",
]

Representation = Callable[[torch.Tensor], np.ndarray]


@runtime_checkable
class FactorSource(Protocol):
    """What a metric needs from a data source with known discrete factors."""

    factor_names: list[str]
    factor_sizes: list[int]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` codes (int64, n x K) drawn from the source's factor distribution."""
        ...

    def render_codes(self, codes: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """uint8 images (N x C x H x W) showing the given codes."""
        ...


def check_source(source: Any) -> None:
    """Raise a clear error if ``source`` does not implement the factor-source contract."""
    missing = [a for a in ("factor_names", "factor_sizes", "sample_factors") if not hasattr(source, a)]
    if not (hasattr(source, "render_codes") or hasattr(source, "render")):
        missing.append("render_codes")
    if missing:
        raise TypeError(
            f"{type(source).__name__} is not a factor source: it lacks {', '.join(missing)}; "
            "use facelib.metrics.ToySource, YaleBSource/DatasetSource, or "
            "facelib.data.synthetic.SyntheticFaces (see facelib.metrics.FactorSource)"
        )
    sizes = list(source.factor_sizes)
    if len(sizes) == 0 or len(sizes) != len(source.factor_names):
        raise ValueError(
            f"factor source has {len(sizes)} factor_sizes for {len(source.factor_names)} factor_names; "
            "give one size (number of discrete levels) per factor"
        )
    if any(int(s) < 1 for s in sizes):
        raise ValueError(f"factor_sizes must all be >= 1, got {sizes}")


def render(source: Any, codes: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Images of ``codes`` from ``source`` (``render_codes`` or, failing that, ``render``)."""
    fn = getattr(source, "render_codes", None) or getattr(source, "render")
    images = fn(np.asarray(codes, dtype=np.int64), rng)
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(np.ascontiguousarray(images))
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[0] != len(codes):
        raise ValueError(
            f"{type(source).__name__}.render_codes must return a uint8 tensor N x C x H x W with "
            f"N={len(codes)}, got dtype {images.dtype} and shape {tuple(images.shape)}"
        )
    return images


def sample_fixed(
    source: Any, k: int, value: int | np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` codes whose factor ``k`` equals ``value`` (a scalar or one value per row).

    Uses the source's own ``sample_fixed`` when it has one (incomplete grids), else
    disentanglement_lib's way: ``sample_factors`` then overwrite column ``k``.
    """
    own = getattr(source, "sample_fixed", None)
    if own is not None:
        codes = np.asarray(own(k, value, n, rng))
        if codes.shape != (n, len(source.factor_sizes)) or not np.all(codes[:, k] == value):
            raise ValueError(
                f"{type(source).__name__}.sample_fixed(k, value, n, rng) must return int codes of shape "
                f"({n}, {len(source.factor_sizes)}) whose column k equals value; got shape {codes.shape}"
            )
        return codes.astype(np.int64)
    # complete grid: overwrite the column
    codes = np.asarray(source.sample_factors(n, rng), dtype=np.int64).copy()
    codes[:, k] = value
    return codes


# ---------------------------------------------------------------------------------------
# ToySource: observations are known functions of the factors (for tests and sanity checks)
# ---------------------------------------------------------------------------------------
class ToySource:
    """A tiny factor source whose "image" writes each factor code into one pixel row.

    Row ``k`` of the 1 x K x width image holds ``round(255 * code_k / (size_k - 1))``, so
    ``ground_truth_representation(source)`` can read the factors back exactly. Every
    combination of codes exists and factors are independent and uniform, as the metrics'
    papers assume.
    """

    def __init__(self, factor_sizes: Sequence[int] = (3, 4, 5, 6), factor_names: Sequence[str] | None = None,
                 width: int = 4):
        sizes = [int(s) for s in factor_sizes]
        if not sizes or any(s < 2 or s > 256 for s in sizes):
            raise ValueError(f"ToySource factor_sizes must be 2..256 levels each, got {list(factor_sizes)}")
        self.factor_sizes = sizes
        self.factor_names = list(factor_names) if factor_names is not None else [f"f{k}" for k in range(len(sizes))]
        if len(self.factor_names) != len(sizes):
            raise ValueError("ToySource needs one factor name per factor size")
        self.width = int(width)
        self.name = "toy"

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, s, size=n) for s in self.factor_sizes], axis=1).astype(np.int64)

    def render_codes(self, codes: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        codes = np.asarray(codes, dtype=np.int64)
        sizes = np.asarray(self.factor_sizes)
        if codes.ndim != 2 or codes.shape[1] != sizes.size or (codes < 0).any() or (codes >= sizes).any():
            raise ValueError(f"codes must be an (n, {sizes.size}) array with 0 <= code_k < {sizes.tolist()}")
        rows = np.rint(255.0 * codes / (sizes - 1)).astype(np.uint8)  # n x K
        img = np.repeat(rows[:, None, :, None], self.width, axis=3)
        return torch.from_numpy(np.ascontiguousarray(img))

    def decode(self, images: torch.Tensor) -> np.ndarray:
        """The factor codes shown in ToySource images (inverse of ``render_codes``)."""
        pix = images[:, 0, :, 0].cpu().numpy().astype(np.float64)
        return np.rint(pix * (np.asarray(self.factor_sizes) - 1) / 255.0)


def ground_truth_representation(source: ToySource, transform: np.ndarray | None = None) -> Representation:
    """The factors themselves as a representation (optionally times a matrix ``transform``).

    ``transform`` (K x d) maps the K codes to d latent dimensions: e.g. a rotation mixes
    factors, a duplicated column copies one factor into two dimensions.
    """
    if not isinstance(source, ToySource):
        raise TypeError("ground_truth_representation needs a ToySource (it reads the codes from the pixels)")
    A = None if transform is None else np.asarray(transform, dtype=np.float64)
    if A is not None and (A.ndim != 2 or A.shape[0] != len(source.factor_sizes)):
        raise ValueError(f"transform must be a {len(source.factor_sizes)} x d matrix, got shape {A.shape}")

    def represent(images: torch.Tensor) -> np.ndarray:
        z = source.decode(images)
        return z if A is None else z @ A

    return represent


def random_representation(dim: int, seed: int = 0) -> Representation:
    """Gaussian noise of width ``dim``, independent of the images (a metric's floor)."""
    rng = np.random.default_rng(seed)

    def represent(images: torch.Tensor) -> np.ndarray:
        return rng.standard_normal((images.shape[0], dim))

    return represent


# ---------------------------------------------------------------------------------------
# Real data: any FaceDataset with discrete factor columns; Extended Yale B
# ---------------------------------------------------------------------------------------
class DatasetSource:
    """A factor source over a fixed set of images with discrete factor labels.

    Each factor's distinct values become codes ``0 .. levels-1`` (sorted by value;
    ``levels[k]`` maps codes back). Not every combination of codes exists in real data,
    so:

    - ``sample_factors`` draws rows of existing images uniformly and returns their codes
      (only existing combinations are ever produced);
    - ``sample_fixed(k, value, n, rng)`` draws existing images whose factor ``k`` has
      that code (uniformly among them), i.e. the other factors follow their conditional
      distribution given factor ``k``, instead of the product distribution that
      disentanglement_lib's overwrite-a-column assumes;
    - ``render_codes`` returns, for each code row, an image with exactly those codes
      (a random one when several share them); a combination that has no image raises.
    """

    def __init__(self, images: Any, factors: dict[str, np.ndarray] | Any, name: str = "dataset"):
        if not isinstance(images, torch.Tensor):
            images = torch.as_tensor(np.ascontiguousarray(images))
        if images.ndim == 3:
            images = images[:, None]
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 N x C x H x W, got {images.dtype} {tuple(images.shape)}")
        self.images = images
        self.name = name
        n = images.shape[0]
        if hasattr(factors, "columns"):
            factors = {c: factors[c].to_numpy() for c in factors.columns}
        if not factors:
            raise ValueError("DatasetSource needs at least one factor column")
        self.factor_names = [str(k) for k in factors]
        self.levels: list[np.ndarray] = []
        cols = []
        for k, v in factors.items():
            v = np.asarray(v)
            if v.shape != (n,):
                raise ValueError(f"factor {k!r} has shape {v.shape}, expected ({n},)")
            lv, code = np.unique(v, return_inverse=True)
            self.levels.append(lv)
            cols.append(code.astype(np.int64))
        self.codes = np.stack(cols, axis=1)
        self.factor_sizes = [int(lv.size) for lv in self.levels]
        # mixed-radix key of each row, for looking images up by their codes
        self._radix = np.cumprod([1] + self.factor_sizes[:-1]).astype(np.int64)
        keys = self.codes @ self._radix
        order = np.argsort(keys, kind="stable")
        self._sorted_keys, self._sorted_rows = keys[order], order
        self._rows_with = [
            [np.flatnonzero(self.codes[:, k] == c) for c in range(s)] for k, s in enumerate(self.factor_sizes)
        ]

    def __repr__(self) -> str:
        sizes = dict(zip(self.factor_names, self.factor_sizes))
        return f"{type(self).__name__}(name={self.name!r}, n={self.images.shape[0]}, factors={sizes})"

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.codes[rng.integers(0, self.codes.shape[0], size=n)].copy()

    def sample_fixed(self, k: int, value: int | np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        values = np.broadcast_to(np.asarray(value, dtype=np.int64), (n,))
        out = np.empty((n, len(self.factor_sizes)), dtype=np.int64)
        for c in np.unique(values):
            if not 0 <= c < self.factor_sizes[k]:
                raise ValueError(f"code {c} out of range for factor {self.factor_names[k]!r} "
                                 f"({self.factor_sizes[k]} levels)")
            where = np.flatnonzero(values == c)
            rows = self._rows_with[k][c]
            out[where] = self.codes[rows[rng.integers(0, rows.size, size=where.size)]]
        return out

    def disjoint_rows(self, n_train: int, n_eval: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of a training and a test sample that share no image.

        A fixed data set is finite: drawing both samples with replacement (as for a renderer)
        makes most test points training points, so the metrics that fit a predictor (DCI, SAP)
        would score it in-sample. Rows are drawn without replacement; when the set holds fewer
        than n_train + n_eval images, all of them are split in the ratio n_train : n_eval, as
        disentanglement_lib's fixed-data variants split the data set.
        """
        n = self.codes.shape[0]
        if n < 2:
            raise ValueError(f"{self.name}: a train/test split needs at least 2 images, the set has {n}")
        perm = rng.permutation(n)
        if n_train + n_eval > n:
            n_train = min(n - 1, max(1, int(round(n * n_train / (n_train + n_eval)))))
            n_eval = n - n_train
        return perm[:n_train], perm[n_train:n_train + n_eval]

    def render_codes(self, codes: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != len(self.factor_sizes):
            raise ValueError(f"codes must be (n, {len(self.factor_sizes)}), got {codes.shape}")
        keys = codes @ self._radix
        lo = np.searchsorted(self._sorted_keys, keys, side="left")
        hi = np.searchsorted(self._sorted_keys, keys, side="right")
        if (hi <= lo).any():
            bad = codes[np.flatnonzero(hi <= lo)[0]].tolist()
            raise ValueError(
                f"{self.name}: no image has codes {bad} ({self.factor_names}); real data has missing "
                "combinations, so draw codes with sample_factors / sample_fixed, not by overwriting columns"
            )
        pick = lo if rng is None else lo + (rng.random(lo.size) * (hi - lo)).astype(np.int64)
        return self.images[torch.as_tensor(self._sorted_rows[pick])]


class YaleBSource(DatasetSource):
    """Extended Yale B as a real, discrete factor set: identity (38), light azimuth, elevation.

    Azimuth (29 distinct angles) and elevation (12) become codes in sorted angle order; only
    64 (azimuth, elevation) pairs were photographed and a few subjects miss some, so this is
    an incomplete grid handled as described in `DatasetSource`. Light direction is not
    independent of itself here (fixing elevation 90 fixes azimuth 0), so even the true factors
    score below 1 on the fixed-factor metrics; compare models with each other, not with 1.
    Give a loaded `FaceDataset` (``facelib.data.load("yaleb")``, with factor columns azimuth
    and elevation), or let it load one (``size`` and ``root`` as for ``facelib.data.yaleb.load_yaleb``).
    """

    def __init__(self, dataset: Any = None, root: str | Path | None = None, size: int | str = 64):
        if dataset is None:
            dataset = load_yaleb(size=size, root=root)
        if dataset.factors is None:
            raise ValueError("the Yale B FaceDataset has no factors table; load it with facelib.data.load('yaleb')")
        cols = {c.lower(): c for c in dataset.factors.columns}
        az = next((cols[c] for c in ("azimuth", "light_azimuth", "az") if c in cols), None)
        el = next((cols[c] for c in ("elevation", "light_elevation", "el") if c in cols), None)
        if az is None or el is None:
            raise ValueError(f"need azimuth and elevation factor columns, found {list(dataset.factors.columns)}")
        images = dataset.images
        factors = {"identity": dataset.identity, "azimuth": dataset.factors[az].to_numpy(),
                   "elevation": dataset.factors[el].to_numpy()}
        super().__init__(images, factors, name="yaleb")
