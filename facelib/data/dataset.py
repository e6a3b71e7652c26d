"""`FaceDataset`: the one in-memory container every loader returns.

Images stay a uint8 tensor (N x C x H x W) so a whole face set fits in memory and
becomes float only per batch; labels are numpy arrays and factors a DataFrame, so
the statistics side (pandas, scikit-learn, statsmodels) reads them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from .checks import check_identity, check_indices, check_pair_table
from .pairs import balanced_pairs, labelled_people
from .pixels import to_float

__all__ = ["FaceDataset", "PAIR_COLUMNS"]

#: Columns of every pair table: indices into the dataset, the same-person label and the fold.
PAIR_COLUMNS = ["left", "right", "same", "fold"]


@dataclass
class FaceDataset:
    """Face images with identity labels and (where known) generative factors.

    Attributes:
        images: uint8 tensor, N x C x H x W (C is 1 or 3), values 0..255.
        identity: int64 array (N,), the person index; -1 where unknown (Frey faces).
        factors: DataFrame with N rows of known generative factors, or None.
        name: data-set name as passed to `facelib.data.load`.
        identity_names: optional names of the identities (index = identity value).
        pair_table: optional official verification pairs (columns `PAIR_COLUMNS`),
            e.g. the LFW View 1/View 2 lists; indices refer to rows of `images`.
        groups: optional int64 array (N,) of group ids for grouped training
            (ModVAE): every image of a group shares all factors but the varying ones.
        group_varying: optional array (N,) of str, the factor that varies inside the
            image's group ("nuisance" for identity groups: everything but identity varies).
        meta: free-form provenance (source path, options) recorded in checkpoints.
    """

    images: torch.Tensor
    identity: np.ndarray
    factors: pd.DataFrame | None = None
    name: str = "faces"
    identity_names: list[str] | None = None
    pair_table: pd.DataFrame | None = None
    groups: np.ndarray | None = None
    group_varying: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor):
            self.images = torch.as_tensor(np.ascontiguousarray(self.images))
        if self.images.dtype != torch.uint8:
            raise TypeError(
                f"{self.name}: images must be a uint8 tensor (0..255), got {self.images.dtype}; "
                "convert with (x * 255).round().clamp(0, 255).to(torch.uint8)"
            )
        if self.images.ndim != 4 or self.images.shape[1] not in (1, 3):
            raise ValueError(
                f"{self.name}: images must have shape N x C x H x W with C in (1, 3), "
                f"got {tuple(self.images.shape)}"
            )
        n = self.images.shape[0]
        # the checks `verify` runs (facelib.data.checks): whole-number labels, one per image
        self.identity = check_identity(self.identity, n, f"{self.name}: identity")
        if self.factors is not None and len(self.factors) != n:
            raise ValueError(f"{self.name}: factors has {len(self.factors)} rows for {n} images")
        for attr in ("groups", "group_varying"):
            value = getattr(self, attr)
            if value is not None:
                value = np.asarray(value)
                if value.shape != (n,):
                    raise ValueError(f"{self.name}: {attr} must have shape ({n},), got {value.shape}")
                setattr(self, attr, value)
        if self.pair_table is not None:
            missing = set(PAIR_COLUMNS) - set(self.pair_table.columns)
            if missing:
                raise ValueError(f"{self.name}: pair_table lacks columns {sorted(missing)}")
            # indices within 0..N-1, same labels as bools agreeing with the identities, no self or repeated pairs
            self.pair_table = check_pair_table(self.pair_table, n, PAIR_COLUMNS, f"{self.name}: pair_table",
                                               identity=self.identity).set_axis(self.pair_table.index)

    # -- basic container protocol -------------------------------------------------
    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.identity[i])

    def __repr__(self) -> str:
        n_id = self.n_identities
        return (
            f"FaceDataset(name={self.name!r}, n={len(self)}, shape={tuple(self.images.shape[1:])}, "
            f"identities={n_id}, factors={None if self.factors is None else list(self.factors.columns)})"
        )

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    @property
    def n_identities(self) -> int:
        known = self.identity[self.identity >= 0]
        return int(np.unique(known).size)

    def float_images(self, index: Any = slice(None)) -> torch.Tensor:
        """Images as float32 in [0, 1] (for plotting or small evaluations)."""
        return to_float(self.images[index])

    def subset(self, index: Any, name: str | None = None) -> "FaceDataset":
        """Rows `index` (bool mask or integer array) as a new dataset.

        Official pairs are kept only when both of their images are kept, with the
        indices renumbered.
        """
        if isinstance(index, slice):
            idx = np.arange(len(self))[index]
        else:
            index = np.asarray(index)
            if index.dtype == bool:
                if index.shape != (len(self),):
                    raise ValueError(f"{self.name}: a boolean mask must have one entry per image ({len(self)}), got "
                                     f"shape {index.shape}; build it from this dataset (e.g. data.identity >= 0)")
                idx = np.flatnonzero(index)
            else:
                idx = check_indices(np.atleast_1d(index), len(self),
                                    f"{self.name}: subset index")
        idx = np.asarray(idx, dtype=np.int64)
        pair_table = None
        if self.pair_table is not None:
            new_pos = np.full(len(self), -1, dtype=np.int64)
            new_pos[idx] = np.arange(idx.size)
            left = new_pos[self.pair_table["left"].to_numpy()]
            right = new_pos[self.pair_table["right"].to_numpy()]
            keep = (left >= 0) & (right >= 0)
            pair_table = self.pair_table.loc[keep].copy()
            pair_table["left"], pair_table["right"] = left[keep], right[keep]
            pair_table = pair_table.reset_index(drop=True)
        return FaceDataset(
            images=self.images[torch.as_tensor(idx)],
            identity=self.identity[idx],
            factors=None if self.factors is None else self.factors.iloc[idx].reset_index(drop=True),
            name=name or self.name,
            identity_names=self.identity_names,
            pair_table=pair_table,
            groups=None if self.groups is None else self.groups[idx],
            group_varying=None if self.group_varying is None else self.group_varying[idx],
            meta=dict(self.meta),
        )

    def factor_table(self) -> pd.DataFrame:
        """Every known factor of each image as one table: `identity` (unknown: -1) and the factors."""
        table = pd.DataFrame({"identity": self.identity})
        if self.factors is not None:
            table = pd.concat([table, self.factors.drop(columns="identity", errors="ignore")
                               .reset_index(drop=True)], axis=1)
        return table

    def grouped(self, varying: dict[str, str | Sequence[str]],
                fixed: Sequence[str] | None = None) -> "FaceDataset":
        """The images in groups for grouped (ModVAE / DC-IGN) training, one copy per varying factor.

        `varying` maps a factor's name to the factor columns it covers (`factor_table`); a group
        of factor F holds images equal on every `fixed` column outside F's and differing in F:
        `grouped({"light": ("azimuth", "elevation"), "identity": "identity"})` gives light groups
        (one person, the light varies) and identity groups (one light, the person varies).
        `fixed` defaults to every column `varying` names. Images appear once per factor,
        `group_varying` says which factor varies in each image's group, and images of unknown
        identity are left out where identity is a column. Raises naming the factor when a column
        is unknown or no two images differ in that factor alone.
        """
        if not varying:
            raise ValueError(f"{self.name}: grouped() needs at least one varying factor, e.g. "
                             "grouped({'light': ('azimuth', 'elevation'), 'identity': 'identity'})")
        table = self.factor_table()
        spec = {name: [cols] if isinstance(cols, str) else list(cols) for name, cols in varying.items()}
        for name, cols in spec.items():
            unknown = [c for c in cols if c not in table.columns]
            if not cols or unknown:
                raise ValueError(f"{self.name}: cannot group by varying factor {name!r}: "
                                 f"{'no columns given' if not cols else f'no factor column(s) {unknown}'}; "
                                 f"its factors are {list(table.columns)}")
        named = list(dict.fromkeys(c for cols in spec.values() for c in cols)) if fixed is None else list(fixed)
        unknown = [c for c in named if c not in table.columns]
        if unknown:
            raise ValueError(f"{self.name}: no fixed factor column(s) {unknown}; its factors are {list(table.columns)}")
        used = set(named) | {c for cols in spec.values() for c in cols}
        known = (table["identity"] >= 0).to_numpy() if "identity" in used else np.ones(len(self), dtype=bool)
        rows = np.flatnonzero(known)
        parts, next_id = [], 0
        for name, cols in spec.items():
            keys = [c for c in named if c not in cols]
            gid = (np.unique(table.loc[rows, keys].to_numpy(), axis=0, return_inverse=True)[1].reshape(-1)
                   if keys else np.zeros(rows.size, dtype=np.int64))
            keep = np.bincount(gid)[gid] >= 2
            if not keep.any():
                raise ValueError(f"{self.name}: no two images share {keys} and differ in factor {name!r} "
                                 f"({cols}); grouping by {name!r} needs such images")
            part = self.subset(rows[keep])
            part.groups, part.group_varying = gid[keep] + next_id, np.full(int(keep.sum()), name, dtype=object)
            next_id += int(gid.max()) + 1
            parts.append(part)
        if len(parts) == 1:
            return parts[0]
        return FaceDataset(
            images=torch.cat([p.images for p in parts]), identity=np.concatenate([p.identity for p in parts]),
            factors=None if self.factors is None else pd.concat([p.factors for p in parts], ignore_index=True),
            name=self.name, identity_names=self.identity_names, groups=np.concatenate([p.groups for p in parts]),
            group_varying=np.concatenate([p.group_varying for p in parts]), meta=dict(self.meta))

    # -- verification helpers -------------------------------------------------------
    def split_by_identity(
        self, test_fraction: float = 0.25, seed: int = 0
    ) -> tuple["FaceDataset", "FaceDataset"]:
        """Split into (train, test) with disjoint identities.

        Verification must be measured on people the model never saw, so whole
        identities (not images) go to the test side. Deterministic for a seed.
        """
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        people = labelled_people(self, "split_by_identity")
        rng = np.random.default_rng(seed)
        n_test = int(round(test_fraction * people.size))
        n_test = min(max(n_test, 1), people.size - 1)
        test_people = rng.choice(people, size=n_test, replace=False)
        is_test = np.isin(self.identity, test_people)
        return (
            self.subset(~is_test & (self.identity >= 0), name=f"{self.name}[train]"),
            self.subset(is_test, name=f"{self.name}[test]"),
        )

    def pairs(self, n: int, seed: int = 0) -> pd.DataFrame:
        """`n` balanced verification pairs (n/2 same person, n/2 different), deterministic.

        Returns a DataFrame with columns left, right (row indices), same (bool) and
        fold (always 0 here; official lists such as LFW's keep theirs in `pair_table`).
        Pairs are distinct and never pair an image with itself (`facelib.data.pairs`).
        """
        return balanced_pairs(self, n, seed)
