"""The rasteriser of the synthetic faces: head models in, uint8 images and landmarks out.

Rendering is vectorised in torch, with no per-pixel Python loop. Each person's head is a
grid of vertices (about one per output pixel along each axis where it faces the camera),
computed once and cached; an image is rendered by projecting the vertices (one matmul per
person), splatting them into a z-buffer with ``scatter_reduce`` (depth and vertex index packed
into one int64 key, so ``amax`` keeps the front-most vertex), closing one-pixel gaps, and
shading the winning vertex of each pixel. ``supersample=2`` renders at twice the size and
area-downsamples (smoother edges, about a quarter of the speed); the default 1 renders
64 x 64 images at roughly 3,000 per CPU-second (``benchmarks/render_speed.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from .factors import LANDMARKS, NUISANCE_FACTORS
from .geometry import AMBIENT, DIFFUSE, Grid, head_model, rotation

__all__ = ["HeadRenderer"]

_FILL = 1.12          # head size: image half-widths per model unit
_DEPTH_Q = 2.0**20    # depth quantisation steps per model unit in the z-buffer key
_GAP_DEPTH = int(0.06 * _DEPTH_Q)  # a pixel this far behind its neighbours is a see-through gap


@contextmanager
def _torch_threads(n: int | None):
    """Run with `n` torch threads (None: leave the setting alone), then restore it."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _close_gaps(kimg: torch.Tensor) -> torch.Tensor:
    """Fill pixels of a (B, H, W) z-buffer of packed keys that lie well behind (or are missing
    between) two opposite neighbours, with the front-most of those neighbours.

    The vertex grid is about one vertex per pixel, so where the surface is stretched a
    pixel can catch no vertex of the front surface; then neither the background nor the far
    side of the head may show through. The one-pixel border is left as it is.
    """
    core = kimg[:, 1:-1, 1:-1]
    behind = core.div(2**24, rounding_mode="floor").add_(_GAP_DEPTH).mul_(2**24)
    best = torch.full_like(core, -1)
    for a, b in (((0, 1), (2, 1)), ((1, 0), (1, 2)), ((0, 0), (2, 2)), ((0, 2), (2, 0))):
        ka = kimg[:, a[0] : a[0] + core.shape[1], a[1] : a[1] + core.shape[2]]
        kb = kimg[:, b[0] : b[0] + core.shape[1], b[1] : b[1] + core.shape[2]]
        pair = torch.where((ka > behind) & (kb > behind), torch.maximum(ka, kb), -1)
        best = torch.maximum(best, pair)
    out = kimg.clone()
    out[:, 1:-1, 1:-1] = torch.where(best >= 0, best, core)
    return out


class HeadRenderer:
    """Renders people (rows of identity parameters) in poses, lights and expressions.

    Args:
        size: output image side; channels: 1 (gray) or 3 (colour).
        supersample: render at this multiple of `size` and area-downsample.
        threads: torch threads while rendering (None keeps torch's setting).
        cache_mb: memory kept for cached per-person head models.
    """

    def __init__(self, size: int, channels: int, supersample: int = 1, threads: int | None = 1,
                 cache_mb: float = 512.0):
        self.size, self.channels, self.supersample, self.threads = size, channels, supersample, threads
        self._grid = Grid(self.size * self.supersample)
        self._slots: OrderedDict[bytes, int] = OrderedDict()   # person parameters -> slab row
        self._slabs: dict[str, torch.Tensor] | None = None
        per_person = self._grid.n_vertices * (7 + 6 + self.channels) * 4
        self._cache_max = max(1, int(cache_mb * 2**20 // per_person))

    def render(self, theta: np.ndarray, nuisance: dict[str, np.ndarray], chunk: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (N x C x H x W) and (N, 4, 2) landmark pixel coordinates of `LANDMARKS`.

        `theta` is (N, 10) identity parameters, `nuisance` one array of N values per factor of
        `NUISANCE_FACTORS`. `chunk` images are splatted at a time (default: about 400k
        vertices' worth, which keeps the working set in cache); it does not change the result.
        """
        n = len(theta)
        images = torch.empty((n, self.channels, self.size, self.size), dtype=torch.uint8)
        marks = torch.empty((n, len(LANDMARKS), 2), dtype=torch.float32)
        if n == 0:
            return images, marks
        if chunk is None:
            chunk = max(1, int(4e5 // self._grid.n_vertices))
        with _torch_threads(self.threads):
            self._render_into(images, marks, theta, {k: nuisance[k] for k in NUISANCE_FACTORS}, chunk)
        return images, marks

    def _build(self, theta: np.ndarray) -> dict[str, torch.Tensor]:
        parts = [head_model(torch.as_tensor(theta[i : i + 16]), self._grid, self.channels)
                 for i in range(0, len(theta), 16)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def _models(self, theta: np.ndarray) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        """Head models of the rows of `theta` and each row's index into them.

        People are cached in preallocated slabs (least recently used ones are replaced),
        so repeated renders neither rebuild nor copy head models.
        """
        uniq, inverse = np.unique(theta, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        keys = [row.tobytes() for row in uniq]
        if len(keys) > self._cache_max:                      # too many people to cache: build once
            return self._build(uniq), inverse
        for k in keys:
            if k in self._slots:
                self._slots.move_to_end(k)
        missing = [i for i, k in enumerate(keys) if k not in self._slots]
        if missing:
            cap = 0 if self._slabs is None else next(iter(self._slabs.values())).shape[0]
            n_free = cap - len(self._slots)
            if n_free < len(missing) and cap < self._cache_max:
                new_cap = min(self._cache_max, max(2 * cap, cap + len(missing) - n_free, 16))
                fresh = self._build(uniq[missing[:1]])
                extra = {k: torch.zeros((new_cap - cap, *t.shape[1:]), dtype=t.dtype) for k, t in fresh.items()}
                self._slabs = extra if self._slabs is None else {k: torch.cat([self._slabs[k], extra[k]]) for k in extra}
                cap = new_cap
            used = set(self._slots.values())
            free = [s for s in range(cap) if s not in used]
            while len(free) < len(missing):
                free.append(self._slots.popitem(last=False)[1])
            built = self._build(uniq[missing])
            for j, i in enumerate(missing):
                slot = free[j]
                for name, slab in self._slabs.items():
                    slab[slot] = built[name][j]
                self._slots[keys[i]] = slot
        slot_of = np.array([self._slots[k] for k in keys], dtype=np.int64)
        return self._slabs, slot_of[inverse]

    def _render_into(self, images, marks, theta, nuis, chunk) -> None:
        n = len(theta)
        models, inverse = self._models(theta)
        # images of one person share its vertices: sort by person, one matmul per person
        order = np.argsort(inverse, kind="stable")
        f32 = {k: torch.tensor(v[order], dtype=torch.float32) for k, v in nuis.items()}
        gi = torch.as_tensor(inverse[order])
        for start in range(0, n, chunk):
            sl = slice(start, min(n, start + chunk))
            img, lm = self._render_chunk(models, gi[sl], {k: v[sl] for k, v in f32.items()})
            dest = torch.as_tensor(order[sl])
            images[dest] = img
            marks[dest] = lm

    def _render_chunk(self, models: dict[str, torch.Tensor], gi: torch.Tensor,
                      f: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Render images whose person indices `gi` are sorted (equal ones adjacent)."""
        b = gi.numel()
        ss = self.supersample
        res = self.size * ss
        c = res + 2                     # canvas with a one-pixel border that catches off-image vertices
        n_v = self._grid.n_vertices
        rot = rotation(torch.deg2rad(f["yaw"]), torch.deg2rad(f["pitch"]))
        # per image a 3 x 7 map from [neutral xyz, expression offset xyz, 1] to
        # (canvas x, canvas y, quantised depth)
        half = res / 2.0
        sc = (f["scale"] * half * _FILL).view(b, 1)
        m = torch.stack([rot[:, 0] * sc, -rot[:, 1] * sc, rot[:, 2] * _DEPTH_Q], dim=1)   # (b, 3, 3)
        off = torch.stack([(1 + 2 * f["tx"]) * half + 1, (1 - 2 * f["ty"]) * half + 1,
                           torch.full((b,), 4.0 * _DEPTH_Q)], dim=1)
        w = torch.cat([m, m * f["expression"].view(b, 1, 1), off.unsqueeze(-1)], dim=2)  # (b, 3, 7)
        scr = torch.empty((b, 3, n_v))
        bounds = torch.cat([torch.tensor([0]), torch.nonzero(gi[1:] != gi[:-1]).view(-1) + 1, torch.tensor([b])])
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            torch.matmul(w[lo:hi].reshape(-1, 7), models["pos"][gi[lo]], out=scr[lo:hi].view(-1, n_v))
        lm_idx = models["landmarks"][gi]                                                  # (b, L)
        lm = torch.gather(scr[:, :2], 2, lm_idx.unsqueeze(1).expand(-1, 2, -1)).transpose(1, 2)
        lm = (lm - 1) / ss
        px, py, dq = scr.unbind(1)
        lin = py.clamp_(0, c - 1).long().mul_(c).add_(px.clamp_(0, c - 1).long())
        lin.add_((torch.arange(b) * (c * c)).view(b, 1))
        key = dq.long().mul_(2**24).add_(torch.arange(n_v))
        buf = torch.full((b * c * c,), n_v, dtype=torch.int64)   # depth 0, background vertex
        buf.scatter_reduce_(0, lin.view(-1), key.view(-1), reduce="amax", include_self=True)
        kimg = buf.view(b, c, c)
        # close one-pixel gaps where the surface is stretched: a pixel that lies well behind
        # (or is missing between) two opposite neighbours takes the front-most neighbour, so
        # neither background nor the far side of the head shows through
        kimg = _close_gaps(kimg)
        kimg = kimg[:, 1:-1, 1:-1]
        vid = kimg.remainder(2**24).reshape(b, -1)
        vid.add_((gi * (n_v + 1)).view(b, 1))
        attr = models["attr"].view(-1, models["attr"].shape[-1])
        a = attr.index_select(0, vid.view(-1)).view(b, res * res, -1)
        # Lambertian: light direction in the head frame, normals blended by expression
        az, el = torch.deg2rad(f["light_azimuth"]), torch.deg2rad(f["light_elevation"])
        light = torch.stack([torch.cos(el) * torch.sin(az), torch.sin(el), torch.cos(el) * torch.cos(az)], -1)
        lh = (rot.transpose(1, 2) @ light.unsqueeze(-1))                                   # (b, 3, 1)
        lw = torch.cat([lh, lh * f["expression"].view(b, 1, 1)], dim=1)                   # (b, 6, 1)
        lam = torch.bmm(a[..., :6], lw).clamp_(min=0)                                      # (b, HW, 1)
        shade = a[..., 6:] * lam.mul_(DIFFUSE).add_(AMBIENT)
        img = shade.clamp_(0, 1).sqrt_().transpose(1, 2).reshape(b, self.channels, res, res)
        if ss > 1:
            img = F.avg_pool2d(img, ss)
        img = img.mul_(255.0).round_().to(torch.uint8)
        return img, lm
