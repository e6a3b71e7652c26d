"""Synthetic 3D faces with known generative factors: facelib's always-available data set.

Disentanglement can only be measured, and ModVAE trained with one-factor-varying batches,
on faces whose factors are known, so facelib renders its own (in the spirit of the 3D face
sets used by DC-IGN and beta-VAE). The model is a small parametric head:

* a super-ellipsoid skull tapering into a jaw, a hair cap, ears and a neck, with the face
  (brow ridge, eye sockets and eyeballs, nose with alae, cheekbones, lips, chin) added as
  smooth bumps and hollows; expression drops the jaw (a band of vertices collapsed behind
  the lip line stretches open onto teeth and a dark mouth), lifts and widens the mouth
  corners, puffs the cheeks and raises the eyebrows: large enough to be learnt from the
  pixels (a factor that barely changes the image caps every disentanglement metric);
* an albedo map: skin tone, hair, eyebrows, eyes, lips;
* per image: rotation (yaw, pitch), scale and shift, orthographic projection with a z-buffer,
  Lambertian shading with an ambient term from a light at (azimuth, elevation), background.

Rendering is vectorised in torch, with no per-pixel Python loop. Each person's head is a
grid of vertices (about one per output pixel along each axis where it faces the camera),
computed once and cached; an image is rendered by projecting the vertices (one matmul per
person), splatting them into a z-buffer with ``scatter_reduce`` (depth and vertex index packed
into one int64 key, so ``amax`` keeps the front-most vertex), closing one-pixel gaps, and
shading the winning vertex of each pixel. ``supersample=2`` renders at twice the size and
area-downsamples (smoother edges, about a quarter of the speed); the default 1 renders
64 x 64 images at roughly 3,000 per CPU-second (``benchmarks/render_speed.py``).

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

import argparse
import math
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .dataset import FaceDataset

__all__ = [
    "load_synthetic",
    "SyntheticFaces",
    "FactorRanges",
    "IDENTITY_PARAMS",
    "IDENTITY_RANGES",
    "NUISANCE_FACTORS",
    "NO_JITTER",
    "LANDMARKS",
    "montage",
    "save_montage",
]

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

_NEUTRAL = {"yaw": 0.0, "pitch": 0.0, "light_azimuth": 0.0, "light_elevation": 20.0,
            "expression": 0.0, "scale": 1.0, "tx": 0.0, "ty": 0.0}
#: Factor ranges (keywords of `load_synthetic`) that pin the scale / shift jitter at the neutral
#: values the metrics' factor source renders with, so a model whose disentanglement is scored
#: can train on such faces: otherwise it must spend latents on three generative factors that no
#: metric scores.
NO_JITTER: dict[str, tuple[float, float]] = {k: (_NEUTRAL[k], _NEUTRAL[k]) for k in ("scale", "tx", "ty")}
_DEFAULT_LEVELS = {"yaw": 10, "pitch": 10, "light_azimuth": 10, "light_elevation": 10, "expression": 10}
_SIZES = range(32, 257, 16)
_AMBIENT, _DIFFUSE = 0.10, 0.95
_FILL = 1.12          # head size: image half-widths per model unit
_DEPTH_Q = 2.0**20    # depth quantisation steps per model unit in the z-buffer key
_GAP_DEPTH = int(0.06 * _DEPTH_Q)  # a pixel this far behind its neighbours is a see-through gap
_BACKGROUND_RGB = (0.42, 0.45, 0.50)
_GRAY = (0.299, 0.587, 0.114)


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


# -- the head model ---------------------------------------------------------------------
def _sig(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def _gauss(du: torch.Tensor, dv: torch.Tensor, su: float | torch.Tensor, sv: float | torch.Tensor) -> torch.Tensor:
    return torch.exp(-((du / su) ** 2 + (dv / sv) ** 2))


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of increasing table (xp, fp) at x (like np.interp)."""
    i = torch.searchsorted(xp, x.contiguous()).clamp(1, xp.numel() - 1)
    x0, x1 = xp[i - 1], xp[i]
    return fp[i - 1] + (fp[i] - fp[i - 1]) * ((x - x0) / (x1 - x0)).clamp(0, 1)


class _Grid:
    """Vertex grid of the head (longitude x latitude) and the neck, for one render size.

    About one vertex per pixel along each axis where the head faces the camera; one-pixel
    gaps left where the surface is stretched are closed after splatting. Never-visible parts (the back of the
    head and neck) are left out.
    """

    def __init__(self, render_size: int):
        n_lon, n_lat = int(round(1.75 * render_size)), int(round(1.4 * render_size))
        lon = torch.linspace(-math.radians(140), math.radians(140), n_lon)
        lat = torch.linspace(-math.radians(86), math.radians(88), n_lat)
        self.head_shape = (n_lat, n_lon)
        self.lat, self.lon = (t.reshape(-1) for t in torch.meshgrid(lat, lon, indexing="ij"))
        n_phi, n_y = int(round(0.75 * render_size)), int(round(0.45 * render_size))
        phi = torch.linspace(-math.radians(125), math.radians(125), n_phi)
        ny = torch.linspace(-1.35, -0.3, n_y)
        self.neck_shape = (n_y, n_phi)
        yy, pp = torch.meshgrid(ny, phi, indexing="ij")
        self.neck_y, self.neck_phi = yy.reshape(-1), pp.reshape(-1)
        self.n_vertices = self.lat.numel() + self.neck_y.numel()


def _grid_normals(points: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Outward unit normals of a (G, rows*cols, 3) grid surface by central differences."""
    g = points.shape[0]
    p = points.reshape(g, *shape, 3)
    d_row = torch.gradient(p, dim=1)[0]
    d_col = torch.gradient(p, dim=2)[0]
    n = torch.cross(d_col, d_row, dim=-1).reshape(g, -1, 3)
    return F.normalize(n, dim=-1, eps=1e-12)


def _head_model(theta: torch.Tensor, grid: _Grid, channels: int) -> dict[str, torch.Tensor]:
    """Vertices of G people: neutral positions, expression offsets, normals, albedo, landmarks.

    `theta` is (G, 10) in `IDENTITY_PARAMS` order; everything is per vertex, (G, V, ...).
    """
    th = theta.to(torch.float32)
    fw, fl, jaw, nl, nw, es, bh, lf, skin, hair = (th[:, i : i + 1] for i in range(10))
    ax = 0.60 * (1 + 0.12 * fw)
    ay = 0.80 * (1 + 0.08 * fl)
    ey = 0.07 + 0.01 * fl
    ex = 0.185 * (1 + 0.15 * es)
    v_tip = -0.17 - 0.05 * nl
    v_m = v_tip - 0.17 - 0.02 * fl
    # mouth: a band of latitude just below the lip line is collapsed onto the lip line when
    # neutral (everything below it is evaluated a band higher up the skull), and stretches
    # open when the jaw drops. Height on the skull, y = ay * g(lat), does not depend on the
    # longitude, so the collapse is an exact 1-D reparametrisation of latitude.
    lat_t = torch.linspace(-math.pi / 2, math.pi / 2, 4001, dtype=torch.float64)
    g_t = ((lat_t.cos().abs() ** 2.3 + lat_t.sin().abs() ** 2.3) ** (-1 / 2.3) * lat_t.sin()).float()
    lat_t = lat_t.float()
    gap = 0.07
    w = (ay * _interp(grid.lat[None], lat_t, g_t)) - v_m
    band = (w <= 0) & (w >= -gap)
    below = w < -gap
    lift = torch.where(band, -w, torch.where(below, gap * torch.exp(-(((w + gap) / 0.45) ** 2)), torch.zeros_like(w)))
    lat = _interp(((w + v_m + lift) / ay).clamp(-1, 1), g_t, lat_t)
    lon = grid.lon[None]
    cl, sl = torch.cos(lat), torch.sin(lat)
    sx, sy, sz = cl * torch.sin(lon), sl, cl * torch.cos(lon)
    # super-ellipsoid skull (radial form keeps the grid even): boxier across the face,
    # deeper at the back
    r_h = (torch.sin(lon).abs() ** 2.6 + torch.cos(lon).abs() ** 2.6) ** (-1 / 2.6)
    r_v = (cl.abs() ** 2.3 + sl.abs() ** 2.3) ** (-1 / 2.3)
    az = torch.where(sz > 0, 0.60, 0.72)
    x = ax * (r_v * r_h * sx)
    y = ay * (r_v * sy)
    z = az * r_v * r_h * sz
    # jaw: the lower face tapers towards the chin
    t = ((0.05 - y) / (ay + 0.05)).clamp(0, 1)
    x = x * (1 - (0.30 - 0.14 * jaw) * t**1.5)
    z = torch.where(z > 0, z * (1 - 0.10 * t**2), z)
    # hair cap (albedo + a little volume): low at the back, a hairline on the forehead
    hair_edge = torch.where(sz > 0, 0.16 + 0.44 * sz - 0.03 * fl, 0.16 + 0.85 * sz)
    hmask = _sig((sy - hair_edge) / 0.035)
    vol = 1 + (0.05 + 0.04 * (1 - sz.clamp(0, 1))) * hmask
    x, y, z = x * vol, y * vol, z * vol
    # ears
    side = torch.sign(sx)
    ear = _gauss(y - 0.0, z + 0.04, 0.13, 0.07) * (sx.abs() > 0.5)
    x = x + side * 0.08 * ear * (1 - hmask)

    u, v = x, y
    front = (sz / 0.35).clamp(0, 1) ** 2
    m_open = torch.exp(-((u / 0.12) ** 4)) * front     # between the lips
    m_jaw = torch.exp(-((u / 0.30) ** 2)) * front      # the part of the face the jaw moves
    # expression offsets (per unit expression): jaw drop + smile
    drop = 0.22
    dy = torch.where(band, drop * w / gap, torch.where(below, -drop * torch.exp(-(((w + gap) / 0.6) ** 2)), torch.zeros_like(w)))
    dy = dy * m_jaw
    corner = torch.exp(-(((u.abs() - 0.12) / 0.06) ** 2) - ((v - v_m) / 0.07) ** 2) * front
    dy = dy + 0.07 * corner
    # raised eyebrows: the brow and the forehead above it lift (the eyes stay put)
    v_brow = ey + 0.105 + 0.035 * bh
    dy = dy + 0.06 * _sig((v - v_brow + 0.04) / 0.02) * torch.exp(-(((v - v_brow) / 0.16).clamp(min=0)) ** 2) * torch.exp(-((u / 0.32) ** 4)) * front
    dx = 0.18 * u * torch.exp(-((v - v_m) / 0.08) ** 2 - (u / 0.2) ** 2) * front

    dz = torch.zeros_like(u)
    for s in (-1.0, 1.0):
        du = u - s * ex
        dz = dz - 0.075 * _gauss(du, v - ey, 0.105, 0.07)          # eye socket
        dz = dz + 0.050 * _gauss(du, v - ey, 0.055, 0.036)         # eyeball
        dz = dz + 0.040 * _gauss(u.abs() - 0.27, v + 0.03, 0.09, 0.08)  # cheekbone
    vb = ey + 0.105 + 0.035 * bh
    dz = dz + 0.045 * torch.exp(-(((v - vb + 0.04 * (u / 0.3) ** 2) / 0.045) ** 2) - (u / 0.34) ** 4)  # brow ridge
    v_top = ey + 0.03
    tn = ((v_top - v) / (v_top - v_tip)).clamp(0, 1)
    fall = torch.exp(-((torch.clamp(v - v_tip, max=0) / 0.035) ** 2))
    su = 0.036 + 0.036 * tn * (1 + 0.45 * nw)
    above = torch.exp(-((torch.clamp(v - v_top, min=0) / 0.03) ** 2))
    dz = dz + (0.02 + (0.20 + 0.04 * nl) * tn**1.4) * fall * above * torch.exp(-((u / su) ** 2))  # nose
    for s in (-1.0, 1.0):
        dz = dz + 0.05 * (1 + 0.15 * nw) * _gauss(u - s * 0.062 * (1 + 0.2 * nw), v - v_tip - 0.02, 0.035, 0.03)  # alae
    dz = dz + 0.05 * _gauss(u, v - v_m, 0.20, 0.12)                 # muzzle
    lip_u = torch.exp(-((u / 0.13) ** 4))
    upper = torch.exp(-(((v - v_m - 0.02) / (0.018 * (1 + 0.3 * lf))) ** 2)) * lip_u
    lower = torch.exp(-(((v - v_m + 0.028) / (0.022 * (1 + 0.3 * lf))) ** 2)) * lip_u
    dz = dz + 0.03 * (1 + 0.35 * lf) * upper + 0.035 * (1 + 0.4 * lf) * lower
    dz = dz - 0.06 * m_open * band                                    # inside of the mouth
    dz = dz + 0.045 * _gauss(u, v + 0.63 + 0.03 * fl, 0.10, 0.08)  # chin
    dz_smile = 0.05 * _gauss(u.abs() - 0.22, v - v_m - 0.08, 0.10, 0.10)
    z = z + front * dz
    # the band sits just inside the surface, so where it is collapsed it never shows
    inward = torch.where(band, 0.995, 1.0)
    surface = torch.stack([u, v, z], dim=-1)
    head0 = torch.stack([u * inward, v, z * inward], dim=-1)
    head_d = torch.stack([dx, dy, front * dz_smile], dim=-1)

    # neck: an elliptic cylinder, the same for everyone
    g = th.shape[0]
    phi, ny = grid.neck_phi[None].expand(g, -1), grid.neck_y[None].expand(g, -1)
    neck0 = torch.stack([0.27 * torch.sin(phi), ny, 0.25 * torch.cos(phi) - 0.12], dim=-1)
    neck_d = torch.zeros_like(neck0)

    n_head0 = _grid_normals(surface, grid.head_shape)
    n_head1 = _grid_normals(surface + head_d, grid.head_shape)
    # the collapsed band has no area when neutral: shade it with its opened normals when open
    # and when neutral shade it like the lip line it hides behind (the first row above it)
    rows, cols = grid.head_shape
    lip_row = (w.view(g, rows, cols)[:, :, 0] <= 0).sum(1).clamp(max=rows - 1)
    n_lip = n_head0.view(g, rows, cols, 3)[torch.arange(g), lip_row]              # (G, cols, 3)
    n_head0 = torch.where(band.unsqueeze(-1), n_lip.repeat(1, rows, 1), n_head0)
    n_neck = _grid_normals(neck0, grid.neck_shape)

    # albedo (RGB): skin, lips, eyebrows, eyes, mouth, hair
    light, dark = torch.tensor([0.93, 0.76, 0.64]), torch.tensor([0.40, 0.26, 0.18])
    skin_rgb = light + (dark - light) * skin[..., None]                       # (G,1,3)
    h = hair[..., None]
    blond, brown, black = torch.tensor([0.78, 0.62, 0.36]), torch.tensor([0.36, 0.22, 0.12]), torch.tensor([0.06, 0.05, 0.05])
    hair_rgb = torch.where(h < 0.5, blond + (brown - blond) * (2 * h), brown + (black - brown) * (2 * h - 1))
    alb = skin_rgb.expand(g, u.shape[1], 3).clone()
    cheek = _gauss(u.abs() - 0.25, v + 0.12, 0.09, 0.08) * front
    alb = alb * (1 - 0.08 * cheek[..., None] * torch.tensor([0.0, 1.0, 1.0]))
    lips = ((upper + lower).clamp(0, 1) * front) ** 1.5
    alb = alb * (1 - 0.45 * lips[..., None] * torch.tensor([0.15, 0.75, 0.65]))
    for s in (-1.0, 1.0):
        du = u - s * ex
        brow = _sig((0.013 - (v - vb + 0.005 + 0.05 * (du / 0.1) ** 2).abs()) / 0.004) * _sig((0.085 - du.abs()) / 0.01)
        brow = brow * front
        alb = alb + (hair_rgb * 0.8 - alb) * (0.85 * brow)[..., None]
        eye = _sig((1 - (du / 0.052) ** 2 - ((v - ey) / (0.020 * (1 - (du / 0.065) ** 2).clamp(0.2, 1))) ** 2) / 0.15) * front
        alb = alb + (torch.tensor([0.74, 0.72, 0.70]) - alb) * eye[..., None]
        iris = _sig((0.019 - torch.sqrt(du**2 + (v - ey) ** 2)) / 0.003) * eye
        alb = alb + (torch.tensor([0.22, 0.14, 0.09]) - alb) * iris[..., None]
        pupil = _sig((0.009 - torch.sqrt(du**2 + (v - ey) ** 2)) / 0.002) * eye
        alb = alb + (torch.tensor([0.03, 0.03, 0.03]) - alb) * pupil[..., None]
        lid = _sig((0.006 - ((v - ey - 0.024 * (1 - (du / 0.06) ** 2)).abs())) / 0.003) * _sig((0.06 - du.abs()) / 0.006) * front
        alb = alb * (1 - 0.6 * lid[..., None])
    nostril = _gauss(u.abs() - 0.035, v - v_tip + 0.028, 0.018, 0.010) * front
    alb = alb * (1 - 0.6 * nostril[..., None])
    teeth = (w > -gap / 4) & band
    mouth_rgb = torch.where(teeth[..., None], torch.tensor([0.62, 0.60, 0.55]), torch.tensor([0.08, 0.03, 0.03]))
    mo = (m_open * band)[..., None]
    alb = alb + (mouth_rgb - alb) * mo
    alb = alb + (hair_rgb - alb) * hmask[..., None]
    neck_alb = (skin_rgb * 0.9).expand(g, neck0.shape[1], 3)

    pos0 = torch.cat([head0, neck0], dim=1)
    delta = torch.cat([head_d, neck_d], dim=1)
    albedo = torch.cat([alb, neck_alb], dim=1).clamp(0, 1)
    if channels == 1:
        albedo = (albedo * torch.tensor(_GRAY, dtype=albedo.dtype)).sum(-1, keepdim=True)
    normal0 = torch.cat([n_head0, n_neck], dim=1)
    normal1 = torch.cat([n_head1, n_neck], dim=1)

    # landmarks: vertex indices of nose tip, eyes, mouth centre on each person's surface
    frontal = (sz > 0.5).expand_as(u)
    big = torch.full_like(u, 1e9)
    nose_tip = torch.where(frontal & (u.abs() < 0.03), -z, big).argmin(dim=1)
    marks = [nose_tip]
    for s in (1.0, -1.0):  # the person's left eye appears on the image's right
        marks.append(torch.where(frontal, (u - s * ex) ** 2 + (v - ey) ** 2, big).argmin(dim=1))
    marks.append(torch.where(frontal, u**2 + (v - v_m - 0.002) ** 2, big).argmin(dim=1))
    ones = torch.ones_like(pos0[..., :1])
    # one extra "vertex" V for the background: no normal, albedo that ambient light turns
    # into the background colour, so empty pixels need no special case when shading
    bg = torch.tensor(_BACKGROUND_RGB) ** 2                      # linear (before the sqrt gamma)
    if channels == 1:
        bg = (bg * torch.tensor(_GRAY)).sum().view(1)
    bg_row = torch.cat([torch.zeros(6), bg / _AMBIENT]).expand(g, 1, -1)
    attr = torch.cat([normal0, normal1 - normal0, albedo], dim=-1).float()
    return {
        "pos": torch.cat([pos0, delta, ones], dim=-1).transpose(1, 2).contiguous(),  # (G, 7, V)
        "attr": torch.cat([attr, bg_row], dim=1),
        "landmarks": torch.stack(marks, dim=1),
    }


def _rotation(yaw: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) rotation: pitch about x (positive = face up), then yaw about y."""
    cy, sy_ = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    r_yaw = torch.stack([cy, zero, sy_, zero, one, zero, -sy_, zero, cy], -1).reshape(-1, 3, 3)
    r_pitch = torch.stack([one, zero, zero, zero, cp, sp, zero, -sp, cp], -1).reshape(-1, 3, 3)
    return r_yaw @ r_pitch


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


# -- renderer and sampler ------------------------------------------------------------------
class SyntheticFaces:
    """Renderer and sampler of synthetic faces; also a factor source for the metrics.

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
        rng = np.random.default_rng([self.seed, 0x1D])
        lo = np.array([IDENTITY_RANGES[p][0] for p in IDENTITY_PARAMS])
        hi = np.array([IDENTITY_RANGES[p][1] for p in IDENTITY_PARAMS])
        #: (n_identities, 10) identity parameters; row k is person k.
        self.people = lo + (hi - lo) * rng.random((self.n_identities, len(IDENTITY_PARAMS)))
        self._grid = _Grid(self.size * self.supersample)
        self._slots: OrderedDict[bytes, int] = OrderedDict()   # person parameters -> slab row
        self._slabs: dict[str, torch.Tensor] | None = None
        per_person = self._grid.n_vertices * (7 + 6 + self.channels) * 4
        self._cache_max = max(1, int(cache_mb * 2**20 // per_person))

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

    def _build(self, theta: np.ndarray) -> dict[str, torch.Tensor]:
        parts = [_head_model(torch.as_tensor(theta[i : i + 16]), self._grid, self.channels)
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

    def render(self, factors: Any, rng: np.random.Generator | None = None, *,
               return_landmarks: bool = False, chunk: int | None = None):
        """uint8 images (N x C x H x W) of factor values (DataFrame / dict) or integer codes.

        Missing per-image factors take neutral values (frontal, light from the front and
        20 degrees above, neutral expression, no jitter). With `return_landmarks`, also
        returns (N, 4, 2) float32 pixel coordinates (x, y) of `LANDMARKS`, origin at the
        top-left image corner, computed from the same projected geometry. `chunk` images
        are splatted at a time (default: about 400k vertices' worth, which keeps the
        working set in cache); it does not change the result.
        """
        table = self._factor_table(factors)
        n = len(table)
        theta = self.identity_params(table)
        nuis = {}
        for name in NUISANCE_FACTORS:
            val = table[name].to_numpy(dtype=np.float64) if name in table.columns else np.full(n, _NEUTRAL[name])
            if not np.isfinite(val).all():
                raise ValueError(f"factor {name} has non-finite values")
            nuis[name] = val
        images = torch.empty((n, self.channels, self.size, self.size), dtype=torch.uint8)
        marks = torch.empty((n, len(LANDMARKS), 2), dtype=torch.float32)
        if n == 0:
            return (images, marks) if return_landmarks else images
        if chunk is None:
            chunk = max(1, int(4e5 // self._grid.n_vertices))
        with _torch_threads(self.threads):
            self._render_into(images, marks, theta, nuis, chunk)
        return (images, marks) if return_landmarks else images

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
        rot = _rotation(torch.deg2rad(f["yaw"]), torch.deg2rad(f["pitch"]))
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
        shade = a[..., 6:] * lam.mul_(_DIFFUSE).add_(_AMBIENT)
        img = shade.clamp_(0, 1).sqrt_().transpose(1, 2).reshape(b, self.channels, res, res)
        if ss > 1:
            img = F.avg_pool2d(img, ss)
        img = img.mul_(255.0).round_().to(torch.uint8)
        return img, lm

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


def load_synthetic(
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


# -- montage ----------------------------------------------------------------------------
def montage(images: Any, nrow: int = 8, padding: int = 2, pad_value: int = 255):
    """A PIL image tiling `images` (FaceDataset or uint8/float tensor N x C x H x W), `nrow` per row.

    Laid out like torchvision's make_grid: `padding` pixels of `pad_value` around every tile.
    """
    from PIL import Image

    if isinstance(images, FaceDataset):
        images = images.images
    x = torch.as_tensor(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise ValueError(f"montage needs images N x C x H x W with N >= 1 and C in (1, 3), got {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    if isinstance(nrow, bool) or int(nrow) < 1:
        raise ValueError(f"nrow must be a positive number of images per row, got {nrow!r}")
    n, c, h, w = x.shape
    cols = min(int(nrow), n)
    rows = -(-n // cols)
    grid = torch.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    arr = grid.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0] if c == 1 else arr)


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
            rows.append({"identity": int(p), **{k: float(_NEUTRAL[k]) for k in NUISANCE_FACTORS}, **over})
    return pd.DataFrame(rows)


def save_montage(path: str | Path = "docs/synthetic_montage.png", n_people: int = 8, size: int = 64,
                 channels: int = 3, seed: int = 0, supersample: int = 1) -> Path:
    """Render people (rows) across yaw, pitch, light and expression (columns) to a PNG."""
    faces = SyntheticFaces(size=size, channels=channels, n_identities=max(n_people, 1), seed=seed,
                           supersample=supersample)
    images = faces.render(montage_factors(range(n_people)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    montage(images, nrow=len(MONTAGE_COLUMNS)).save(path, optimize=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m facelib.data.synthetic --montage docs/synthetic_montage.png`."""
    parser = argparse.ArgumentParser(prog="python -m facelib.data.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--montage", default="docs/synthetic_montage.png", help="output PNG path")
    parser.add_argument("--people", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = save_montage(args.montage, n_people=args.people, size=args.size, channels=args.channels, seed=args.seed)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
