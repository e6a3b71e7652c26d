"""Geometry of the synthetic heads: one person's vertices, normals, albedo and landmarks.

The head model of `facelib.data.synthetic` is a small parametric head:

* a super-ellipsoid skull tapering into a jaw, a hair cap, ears and a neck, with the face
  (brow ridge, eye sockets and eyeballs, nose with alae, cheekbones, lips, chin) added as
  smooth bumps and hollows; expression drops the jaw (a band of vertices collapsed behind
  the lip line stretches open onto teeth and a dark mouth), lifts and widens the mouth
  corners, puffs the cheeks and raises the eyebrows: large enough to be learnt from the
  pixels (a factor that barely changes the image caps every disentanglement metric);
* an albedo map: skin tone, hair, eyebrows, eyes, lips;
* per image: rotation (yaw, pitch), scale and shift, orthographic projection with a z-buffer,
  Lambertian shading with an ambient term from a light at (azimuth, elevation), background.

Everything here is per person (a grid of vertices computed once, cached by the renderer) except
`rotation`, the per-image pose; the lighting constants are shared with the renderer's shading.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["Grid", "head_model", "rotation", "AMBIENT", "DIFFUSE"]

#: Lambertian shading: ambient term and diffuse weight.
AMBIENT, DIFFUSE = 0.10, 0.95
_BACKGROUND_RGB = (0.42, 0.45, 0.50)
#: How much denser the vertex grid is across the mouth and jaw, which an open mouth stretches.
_MOUTH_DENSITY = 2.5
_GRAY = (0.299, 0.587, 0.114)


def _sig(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def _gauss(du: torch.Tensor, dv: torch.Tensor, su: float | torch.Tensor, sv: float | torch.Tensor) -> torch.Tensor:
    return torch.exp(-((du / su) ** 2 + (dv / sv) ** 2))


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of increasing table (xp, fp) at x (like np.interp)."""
    i = torch.searchsorted(xp, x.contiguous()).clamp(1, xp.numel() - 1)
    x0, x1 = xp[i - 1], xp[i]
    return fp[i - 1] + (fp[i] - fp[i - 1]) * ((x - x0) / (x1 - x0)).clamp(0, 1)


def _latitudes(per_radian: float) -> torch.Tensor:
    """Grid latitudes, `per_radian` apart except across the mouth and jaw, where they are
    `_MOUTH_DENSITY` times as dense: the opening mouth stretches that band several-fold."""
    fine = torch.linspace(-math.radians(86), math.radians(88), 4001, dtype=torch.float64)
    lo, hi = math.radians(-52), math.radians(-14)
    density = 1 + (_MOUTH_DENSITY - 1) * torch.sigmoid((fine - lo) / 0.03) * torch.sigmoid((hi - fine) / 0.03)
    step = fine[1] - fine[0]
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum((density[1:] + density[:-1]) / 2 * step, 0)])
    n = int(round(per_radian * float(cum[-1])))
    return _interp(torch.linspace(0, float(cum[-1]), n, dtype=torch.float64), cum, fine).float()


class Grid:
    """Vertex grid of the head (longitude x latitude) and the neck, for one render size.

    About one vertex per pixel along each axis where the head faces the camera (`_MOUTH_DENSITY`
    rows per pixel across the mouth and jaw, which an open mouth stretches); one-pixel gaps left
    where the surface is stretched are closed after splatting. Never-visible parts (the back of the
    head and neck) are left out.
    """

    def __init__(self, render_size: int):
        n_lon, n_lat = int(round(1.75 * render_size)), int(round(1.4 * render_size))
        lon = torch.linspace(-math.radians(140), math.radians(140), n_lon)
        lat = _latitudes((n_lat - 1) / math.radians(174))
        self.head_shape = (lat.numel(), n_lon)
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


def head_model(theta: torch.Tensor, grid: Grid, channels: int) -> dict[str, torch.Tensor]:
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
    gap = 0.15
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
    m_open = torch.exp(-((u / 0.19) ** 4)) * front     # between the lips
    m_jaw = torch.exp(-((u / 0.45) ** 2)) * _sig(sz / 0.08)   # the front of the face, which the jaw moves
    # expression offsets (per unit expression): jaw drop + smile. Between the lips the jaw opens
    # the collapsed band (a dark mouth); beside them the cheek stretches smoothly, so the band
    # stays shut there. The drop moves the whole chin: at 32 px the open mouth changes about
    # 40 % as many grey levels as the full pitch range (tests/test_synthetic.py).
    drop = 0.4
    t_band = (-w / gap).clamp(0, 1)
    t_smooth = _sig((-w - gap / 2) / 0.14)
    t = m_open * t_band + (1 - m_open) * t_smooth
    dy = -drop * m_jaw * t
    corner = torch.exp(-(((u.abs() - 0.12) / 0.06) ** 2) - ((v - v_m) / 0.07) ** 2) * front
    dy = dy + 0.06 * corner
    # raised eyebrows: the brow and the forehead above it lift (the eyes stay put)
    v_brow = ey + 0.105 + 0.035 * bh
    dy = dy + 0.08 * _sig((v - v_brow + 0.04) / 0.04) * torch.exp(-(((v - v_brow) / 0.16).clamp(min=0)) ** 2) * torch.exp(-((u / 0.32) ** 4)) * front
    dx = 0.2 * u * torch.exp(-((v - v_m) / 0.08) ** 2 - (u / 0.2) ** 2) * front

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
    dz_smile = 0.12 * _gauss(u.abs() - 0.22, v - v_m - 0.08, 0.10, 0.10)
    z = z + front * dz
    # between the lips the band sits just inside the surface, so where it is collapsed it never shows
    inward = torch.where(band, 1 - 0.005 * m_open, 1.0)
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
    n_head1 = torch.where(band.unsqueeze(-1), F.normalize(m_open[..., None] * n_head1 + (1 - m_open[..., None]) * n_head0, dim=-1), n_head1)
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
    bg_row = torch.cat([torch.zeros(6), bg / AMBIENT]).expand(g, 1, -1)
    attr = torch.cat([normal0, normal1 - normal0, albedo], dim=-1).float()
    return {
        "pos": torch.cat([pos0, delta, ones], dim=-1).transpose(1, 2).contiguous(),  # (G, 7, V)
        "attr": torch.cat([attr, bg_row], dim=1),
        "landmarks": torch.stack(marks, dim=1),
    }


def rotation(yaw: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) rotation: pitch about x (positive = face up), then yaw about y."""
    cy, sy_ = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    r_yaw = torch.stack([cy, zero, sy_, zero, one, zero, -sy_, zero, cy], -1).reshape(-1, 3, 3)
    r_pitch = torch.stack([one, zero, zero, zero, cp, sp, zero, -sp, cp], -1).reshape(-1, 3, 3)
    return r_yaw @ r_pitch
