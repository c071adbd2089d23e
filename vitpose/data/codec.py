"""UDP heatmap codec: Gaussian targets, DARK-UDP decoding, heatmap → image, heatmap flip.

Under UDP a heatmap of ``w`` pixels covers the same interval as an input crop of ``W_in`` pixels, so the
crop → heatmap factor is ``(W_in - 1) / (w - 1)`` (not ``W_in / w``) and flipping needs no one-pixel
shift. Numerics follow REFERENCE §3 "UDP Gaussian target" and §4 "Decode" (the released implementation).
Points are ``(x, y)``; sizes ``(H, W)``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

# (Hess + εI)^-1 uses float32's machine epsilon, as the released decoder does.
_HESSIAN_EPS = float(np.finfo(np.float32).eps)


def udp_encode(
    keypoints: np.ndarray,
    visibility: np.ndarray,
    input_size: tuple[int, int],
    heatmap_size: tuple[int, int],
    sigma: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """UDP Gaussian heatmap targets.

    Args:
        keypoints: (K, 2) ``(x, y)`` in input-crop pixels.
        visibility: (K,) COCO visibility (0, 1, 2) or a weight; joints below 0.5 get no target.
        input_size: crop size ``(H_in, W_in)``.
        heatmap_size: heatmap size ``(h, w)``.
        sigma: Gaussian σ in heatmap pixels.

    Returns:
        heatmaps: (K, h, w) float32, ``exp(-|u - μ|² / 2σ²)`` centred on the sub-pixel
            ``μ = keypoint / ((W_in - 1) / (w - 1), (H_in - 1) / (h - 1))``, inside the
            (2·3σ + 1)² window around the rounded μ, 0 elsewhere.
        weights: (K,) float32, ``min(visibility, 1)``; 0 for invisible joints and for joints whose
            window lies fully outside the heatmap.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    visibility = np.asarray(visibility, dtype=np.float64).reshape(-1)
    if keypoints.ndim != 2 or keypoints.shape[1] != 2 or visibility.shape[0] != keypoints.shape[0]:
        raise ValueError(
            f"udp_encode: expected keypoints (K, 2) and visibility (K,), got {keypoints.shape} "
            f"and {visibility.shape}"
        )
    in_h, in_w = input_size
    hm_h, hm_w = heatmap_size
    factor = np.array([(in_w - 1) / (hm_w - 1), (in_h - 1) / (hm_h - 1)])
    mu = keypoints / factor                                           # (K, 2) heatmap px
    radius = 3.0 * sigma
    # Window centre int(μ + 0.5): the released code truncates toward zero (astype int), kept here.
    centre = np.trunc(mu + 0.5)                                       # (K, 2)
    # The window [centre - r, centre + r] misses the map entirely: no usable target. (The released
    # test is off by one on the left/top side: a window ending at -1 kept weight 1 with an all-zero
    # target; here it gets weight 0, as REFERENCE §3 states.)
    outside = np.any(centre + radius < 0, axis=1) | (centre[:, 0] - radius > hm_w - 1) | (
        centre[:, 1] - radius > hm_h - 1
    )
    # Non-finite keypoints (e.g. NaN from an unlabelled joint) can never be a target.
    valid = (visibility >= 0.5) & ~outside & np.all(np.isfinite(mu), axis=1)

    # The Gaussian is evaluated inside each joint's window only (13 × 13 of 64 × 48 for σ = 2), with
    # the same float64 expression per pixel as a whole-map evaluation, so the values are identical.
    heatmaps = np.zeros((keypoints.shape[0], hm_h, hm_w), dtype=np.float32)
    reach = np.arange(-np.floor(radius), np.floor(radius) + 1)        # integer offsets, |d| <= 3σ
    joints = np.flatnonzero(valid)                                    # (J,)
    u = centre[joints, 0, None] + reach                               # (J, D) window columns
    v = centre[joints, 1, None] + reach                               # (J, D) window rows
    gauss = np.exp(-((u[:, None, :] - mu[joints, 0, None, None]) ** 2
                     + (v[:, :, None] - mu[joints, 1, None, None]) ** 2) / (2.0 * sigma**2))  # (J, D, D)
    inside = ((v >= 0) & (v < hm_h))[:, :, None] & ((u >= 0) & (u < hm_w))[:, None, :]
    j_index = np.broadcast_to(joints[:, None, None], inside.shape)
    rows = np.broadcast_to(v[:, :, None], inside.shape)
    cols = np.broadcast_to(u[:, None, :], inside.shape)
    heatmaps[j_index[inside], rows[inside].astype(np.intp), cols[inside].astype(np.intp)] = gauss[inside]
    weights = np.where(valid, np.minimum(visibility, 1.0), 0.0).astype(np.float32)
    return heatmaps, weights


def _gaussian_taps(kernel: int) -> np.ndarray:
    """(kernel,) float64 taps of OpenCV's ``getGaussianKernel(kernel, 0)`` (σ = 2.0 for 11), as in the
    released decoder."""
    return cv2.getGaussianKernel(kernel, 0)[:, 0]


def _blur_max_rescaled(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """Gaussian-blur (N, K, h, w) maps with zero padding; rescale each so its max equals the input max.

    One separable OpenCV call per map (the reference decoder's blur; :func:`udp_decode` blurs only
    where it needs to, see there).
    """
    taps = cv2.getGaussianKernel(kernel, 0)
    maps = np.ascontiguousarray(heatmaps, dtype=np.float64).reshape(-1, *heatmaps.shape[-2:])
    blurred = np.empty_like(maps)
    for i, hm in enumerate(maps):
        blurred[i] = cv2.sepFilter2D(hm, -1, taps, taps, borderType=cv2.BORDER_CONSTANT)
    blurred = blurred.reshape(heatmaps.shape)
    orig_max = heatmaps.max(axis=(-2, -1), keepdims=True)
    new_max = blurred.max(axis=(-2, -1), keepdims=True)
    # An all-zero map stays all zero instead of dividing by zero.
    ratio = np.divide(orig_max, new_max, out=np.ones_like(new_max), where=new_max != 0)
    return blurred * ratio


def _check_decode_args(shape: tuple[int, ...], blur_kernel: int, dxy: str) -> None:
    if len(shape) != 4:
        raise ValueError(f"udp_decode: expected heatmaps (N, K, h, w), got shape {tuple(shape)}")
    if dxy not in ("udp", "dark"):
        raise ValueError(f"udp_decode: dxy must be 'udp' or 'dark', got {dxy!r}")
    if blur_kernel < 1 or blur_kernel % 2 == 0:
        raise ValueError(f"udp_decode: blur_kernel must be a positive odd integer, got {blur_kernel}")


def _newton_step(at, dxy: str):
    """Terms of the Newton step -(Hess + εI)^-1 ∇ of L at the argmax, from ``at(dx, dy)`` = L at the
    (edge-clamped) neighbour: Hess + εI = [[a, b], [b, d]], ∇ = (gx, gy) and det = a·d - b².
    Shared by both decoders so that they cannot drift apart."""
    centre = at(0, 0)
    gx = 0.5 * (at(1, 0) - at(-1, 0))
    gy = 0.5 * (at(0, 1) - at(0, -1))
    dxx = at(1, 0) - 2.0 * centre + at(-1, 0)
    dyy = at(0, 1) - 2.0 * centre + at(0, -1)
    if dxy == "udp":
        # Released 7-point formula, kept by default for parity with the released evaluation.
        mixed = 0.5 * (
            at(1, 1) - at(1, 0) - at(0, 1) + 2.0 * centre - at(-1, 0) - at(0, -1) + at(-1, -1)
        )
    else:
        mixed = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    # step = -(Hess + εI)^-1 ∇, written out for the 2 × 2 case.
    a, b, d = dxx + _HESSIAN_EPS, mixed, dyy + _HESSIAN_EPS
    det = a * d - b * b
    return a, b, d, gx, gy, det


def udp_decode_reference(
    heatmaps: np.ndarray, blur_kernel: int = 11, *, dxy: str = "udp"
) -> tuple[np.ndarray, np.ndarray]:
    """The straightforward DARK-UDP decoder: blur every whole map, then refine (see :func:`udp_decode`).

    Kept as the reference that tests and ``benchmarks/postprocess.py`` compare :func:`udp_decode`
    with (same arguments and results; about 100× slower).
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    _check_decode_args(heatmaps.shape, blur_kernel, dxy)
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    index = flat.argmax(axis=-1)                                      # (N, K)
    scores = np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]
    x, y = index % w, index // w                                      # (N, K) ints
    detected = scores > 0

    blurred = _blur_max_rescaled(heatmaps, blur_kernel)
    nn, kk = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")

    def at(dx: int, dy: int) -> np.ndarray:
        yy = np.clip(y + dy, 0, h - 1)
        xx = np.clip(x + dx, 0, w - 1)
        return np.log(np.clip(blurred[nn, kk, yy, xx], 1e-3, 50.0))       # (N, K)

    a, b, d, gx, gy, det = _newton_step(at, dxy)
    ok = detected & (det != 0)
    safe_det = np.where(ok, det, 1.0)
    step_x = np.where(ok, -(d * gx - b * gy) / safe_det, 0.0)
    step_y = np.where(ok, -(-b * gx + a * gy) / safe_det, 0.0)

    coords = np.stack([x + step_x, y + step_y], axis=-1)
    coords[~detected] = -1.0
    return coords.astype(np.float32), scores.astype(np.float32)


# Bounds of the released log-clip: L = log(clip(blurred · ratio, _LOG_LOW, _LOG_HIGH)).
_LOG_LOW, _LOG_HIGH = 1e-3, 50.0
# Maps decoded per step of udp_decode_tensor: small enough for the chunk to stay in cache between
# the argmax and the patch gather (measured fastest on CPU), large enough to amortise the op calls.
_DECODE_CHUNK = 4096


def _argmax_2d(maps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(M, h, w) → (score, x, y) of each map's first maximum in row-major order, as ``np.argmax``.

    On CPU numpy's vectorised argmax is used (measured 2-5× faster than torch's max/argmax there).
    """
    m, h, w = maps.shape
    flat = maps.reshape(m, h * w)
    if maps.device.type == "cpu" and maps.dtype in (torch.float32, torch.float64):
        index = torch.from_numpy(flat.numpy().argmax(axis=1))
    else:
        index = flat.argmax(dim=1)      # first maximum on CUDA and CPU alike (torch docs)
    score = flat.gather(1, index[:, None])[:, 0]
    return score, index % w, torch.div(index, w, rounding_mode="floor")


def _blur_neighbourhood(maps: Tensor, x: Tensor, y: Tensor, taps: Tensor) -> Tensor:
    """Blurred values (zero padding) at the 3 × 3 pixels around (x, y), edge-clamped like the released
    decoder's neighbour lookup.

    Args:
        maps: (M, h, w); x, y: (M,) integer argmax; taps: (k,) float64 Gaussian taps.

    Returns:
        (M, 3, 3) float64, ``[m, 1 + dy, 1 + dx]`` = blur at ``(clip(x + dx), clip(y + dy))``.

    The blur of a pixel only reads the k × k window around it, so the 3 × 3 neighbourhood needs one
    (k + 2)² patch per map: ``Rᵀ · patch · C``, where the band matrices R, C (P, 3) hold the taps
    for the three (clamped) rows / columns and zeros for patch pixels outside the map (zero padding).
    """
    m, h, w = maps.shape
    k = taps.shape[0]
    if maps.device.type == "cpu" and min(h, w) >= k + 2 and maps.dtype in (torch.float32, torch.float64):
        return torch.from_numpy(_blur_neighbourhood_numpy(maps.numpy(), x.numpy(), y.numpy(), taps.numpy()))
    return _blur_neighbourhood_torch(maps, x, y, taps)


def _blur_neighbourhood_torch(maps: Tensor, x: Tensor, y: Tensor, taps: Tensor) -> Tensor:
    """:func:`_blur_neighbourhood` in torch (any device, dtype and map size): a gathered patch with
    clamped indices; the padding mask is folded into the band matrices."""
    m, h, w = maps.shape
    k = taps.shape[0]
    r = k // 2 + 1                                                    # patch half-size
    dev = maps.device
    offsets = torch.arange(-r, r + 1, device=dev)                     # (P,), P = k + 2
    rows, cols = y[:, None] + offsets, x[:, None] + offsets           # (M, P)
    index = rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]   # (M, P, P)
    patch = torch.gather(maps.reshape(m, h * w), 1, index.view(m, -1)).view(index.shape)
    # band[j, p] = taps[p - j]: the blur at offset j - 1 ∈ {-1, 0, 1} from the patch centre.
    p = torch.arange(2 * r + 1, device=dev)[None, :] - torch.arange(3, device=dev)[:, None]
    band = torch.where((p >= 0) & (p < k), taps[p.clamp(0, k - 1)], 0.0)          # (3, P)
    # Released lookup clamps the neighbour to the map: at the border the "neighbour" is the centre.
    row_pick = torch.stack([1 - (y > 0).long(), torch.ones_like(y), 1 + (y < h - 1).long()], 1)
    col_pick = torch.stack([1 - (x > 0).long(), torch.ones_like(x), 1 + (x < w - 1).long()], 1)
    row_band = band[row_pick] * ((rows >= 0) & (rows < h))[:, None, :]             # (M, 3, P)
    col_band = band[col_pick] * ((cols >= 0) & (cols < w))[:, None, :]             # (M, 3, P)
    return row_band @ patch.to(torch.float64) @ col_band.transpose(1, 2)          # (M, 3, 3)


def _blur_neighbourhood_numpy(maps: np.ndarray, x: np.ndarray, y: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """:func:`_blur_neighbourhood` on CPU for maps of at least (k + 2)² pixels, in numpy (measured
    ≈ 1.3× faster there): each (k + 2)² patch is a window view placed inside the map (shifted at the
    border), and the band matrices are built for the shift, so the patch needs no index arithmetic
    per pixel and no padding mask (pixels outside the map never enter the patch)."""
    m, h, w = maps.shape
    k = taps.shape[0]
    size = k + 2
    top = np.clip(y - size // 2, 0, h - size)                         # (M,) patch origin, inside the map
    left = np.clip(x - size // 2, 0, w - size)
    windows = np.lib.stride_tricks.sliding_window_view(maps, (size, size), axis=(1, 2))
    patch = windows[np.arange(m), top, left]                          # (M, P, P)
    # padded[q + 2P] = taps[q] for 0 <= q < k, 0 elsewhere: band lookups need no range test.
    padded = np.zeros(k + 4 * size)
    padded[2 * size:2 * size + k] = taps
    step = np.array([-1, 0, 1])
    offsets = np.arange(size)
    row_at = np.clip(y[:, None] + step, 0, h - 1)                     # (M, 3) clamped neighbour rows
    col_at = np.clip(x[:, None] + step, 0, w - 1)
    row_band = padded[(top[:, None, None] + offsets) - row_at[:, :, None] + k // 2 + 2 * size]   # (M, 3, P)
    col_band = padded[(left[:, None, None] + offsets) - col_at[:, :, None] + k // 2 + 2 * size]
    return np.matmul(np.matmul(row_band, patch), col_band.transpose(0, 2, 1))


def _blur_at(maps: Tensor, index: Tensor, y: Tensor, x: Tensor, taps: Tensor) -> Tensor:
    """Float64 blur (zero padding) of ``maps[index]`` at pixel (x, y); index, x, y: (C,) → (C,)."""
    m, h, w = maps.shape
    k = taps.shape[0]
    offsets = torch.arange(-(k // 2), k // 2 + 1, device=maps.device)
    rows, cols = y[:, None] + offsets, x[:, None] + offsets                        # (C, k)
    flat = (index[:, None, None] * h + rows.clamp(0, h - 1)[:, :, None]) * w + cols.clamp(0, w - 1)[:, None, :]
    patch = maps.reshape(-1)[flat.view(-1)].view(flat.shape).to(torch.float64)    # (C, k, k)
    row_taps = taps * ((rows >= 0) & (rows < h))                                   # (C, k), zero padding
    col_taps = taps * ((cols >= 0) & (cols < w))
    return ((row_taps[:, :, None] * patch).sum(1) * col_taps).sum(1)


def _blurred_max_banded(maps: Tensor, taps: Tensor) -> Tensor:
    """(M, h, w) → (M,) float64 max of the whole blur as two banded matrix products G_h · map · G_wᵀ."""
    m, h, w = maps.shape
    k = taps.shape[0]

    def banded(n: int) -> Tensor:                                     # (n, n), [i, j] = taps[j - i + k//2]
        d = torch.arange(n, device=maps.device)[None, :] - torch.arange(n, device=maps.device)[:, None]
        return torch.where(d.abs() <= k // 2, taps[(d + k // 2).clamp(0, k - 1)], 0.0)

    return (banded(h) @ maps.to(torch.float64) @ banded(w).T).amax(dim=(-2, -1))


def _blurred_max(maps: Tensor, peak: Tensor, taps: Tensor) -> Tensor:
    """(M, h, w) maps and their maxima (M,) → (M,) float64 maximum of each map's Gaussian blur
    (zero padding).

    GPU: the whole float64 blur as two banded matrix products (G_h · map · G_wᵀ). CPU, where float64
    blurs are slow: a float32 blur of the maps stacked into one tall image (k // 2 zero rows after
    each give the zero padding), one OpenCV call, finds the pixels within float32's error bound of the
    maximum; the float64 blur is then evaluated at those few pixels only. The result is the float64
    maximum either way.
    """
    m, h, w = maps.shape
    k = taps.shape[0]
    if maps.device.type != "cpu":
        return _blurred_max_banded(maps, taps)
    values = maps.to(torch.float32).numpy()
    stack = np.empty((m, h + k // 2, w), dtype=np.float32)
    stack[:, :h] = values
    stack[:, h:] = 0.0
    kernel = taps.numpy().astype(np.float32)[:, None]
    rough = cv2.sepFilter2D(stack.reshape(-1, w), -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT)
    rough = rough.reshape(m, -1)
    rough[:, h * w:] = -np.inf                                        # the padding rows are no pixels
    # |float32 blur - float64 blur| <= ~25 ulp · max|map| for two 11-tap passes with taps summing to 1;
    # 1e-5 (≈ 170 ulp) leaves a wide margin. Usually only the float32 argmax is that close to the top.
    low = values.reshape(m, -1).min(axis=1)
    bound = 1e-5 * np.maximum(np.abs(peak.numpy()), np.abs(low)) + 1e-30
    rows = np.arange(m)
    top = rough.argmax(axis=1)
    floor = rough[rows, top] - 2 * bound
    rough[rows, top] = -np.inf
    crowded = np.flatnonzero(rough.max(axis=1) >= floor)              # several pixels near the top
    extra_map, extra_pixel = np.nonzero(rough[crowded] >= floor[crowded, None])
    index = torch.from_numpy(np.concatenate([rows, crowded[extra_map]]))
    pixel = torch.from_numpy(np.concatenate([top, extra_pixel]))
    exact = _blur_at(maps, index, pixel // w, pixel % w, taps)                   # (C,)
    return torch.full((m,), -torch.inf, dtype=torch.float64).scatter_reduce_(0, index, exact, "amax")


def _decode_chunk(maps: Tensor, taps: Tensor, dxy: str) -> tuple[Tensor, Tensor]:
    """(M, h, w) maps → coords (M, 2) float64 and scores (M,) float64; see :func:`udp_decode`."""
    m, h, w = maps.shape
    scores, x, y = _argmax_2d(maps)
    scores = scores.to(torch.float64)
    detected = scores > 0
    blurred = _blur_neighbourhood(maps, x, y, taps)                   # (M, 3, 3)
    # L = log(clip(ratio · B)) with ratio = max / max(B) ≥ 1 (a blur with zero padding never exceeds
    # the map's positive maximum). Where every neighbour has B ≥ 1e-3 and the maximum is ≤ 50, the
    # clip is inactive, so L = log ratio + log B and the constant log ratio cancels in every finite
    # difference of the Newton step: the whole-map blur (for max B) is only needed elsewhere. The
    # margins keep float rounding of the blur's taps on the same side of the bounds.
    simple = (blurred.amin(dim=(1, 2)) >= _LOG_LOW * (1 + 1e-9)) & (scores <= _LOG_HIGH * (1 - 1e-9))
    log_b = torch.log(blurred.clamp_min(_LOG_LOW))
    rest = (detected & ~simple).nonzero()[:, 0]
    if rest.numel():  # the released rescaling, with max(B) from a whole-map blur
        new_max = _blurred_max(maps[rest], scores[rest], taps)
        ratio = torch.where(new_max != 0, scores[rest] / torch.where(new_max != 0, new_max, 1.0), 1.0)
        log_b[rest] = torch.log((blurred[rest] * ratio[:, None, None]).clamp(_LOG_LOW, _LOG_HIGH))

    def at(dx: int, dy: int) -> Tensor:
        return log_b[:, 1 + dy, 1 + dx]

    a, b, d, gx, gy, det = _newton_step(at, dxy)
    ok = detected & (det != 0)
    safe_det = torch.where(ok, det, 1.0)
    zero = torch.zeros((), dtype=torch.float64, device=maps.device)
    step_x = torch.where(ok, -(d * gx - b * gy) / safe_det, zero)
    step_y = torch.where(ok, -(-b * gx + a * gy) / safe_det, zero)
    coords = torch.stack([x + step_x, y + step_y], dim=-1)
    coords[~detected] = -1.0
    return coords, scores


def udp_decode_tensor(
    heatmaps: Tensor, blur_kernel: int = 11, *, dxy: str = "udp"
) -> tuple[Tensor, Tensor]:
    """:func:`udp_decode` on the heatmaps' device (GPU when the model runs there).

    Args: heatmaps (N, K, h, w) any float dtype. Returns coords (N, K, 2) float32 and scores (N, K)
    float32 tensors on the same device. The refinement runs in float64, as the reference does.
    """
    _check_decode_args(tuple(heatmaps.shape), blur_kernel, dxy)
    n, k, h, w = heatmaps.shape
    maps = heatmaps.detach().reshape(n * k, h, w)
    taps = torch.from_numpy(_gaussian_taps(blur_kernel)).to(heatmaps.device)
    coords = torch.empty(n * k, 2, dtype=torch.float32, device=heatmaps.device)
    scores = torch.empty(n * k, dtype=torch.float32, device=heatmaps.device)
    parts = [slice(start, start + _DECODE_CHUNK) for start in range(0, n * k, _DECODE_CHUNK)]

    def decode(part: slice) -> None:
        coords[part], scores[part] = _decode_chunk(maps[part], taps, dxy)

    threads = min(torch.get_num_threads(), len(parts))
    if heatmaps.device.type == "cpu" and threads > 1:
        # numpy, OpenCV and torch release the GIL in the heavy steps: chunks decode in parallel.
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(decode, parts))
    else:
        for part in parts:
            decode(part)
    return coords.view(n, k, 2), scores.view(n, k)


def udp_decode(
    heatmaps: np.ndarray | Tensor, blur_kernel: int = 11, *, dxy: str = "udp"
) -> tuple[np.ndarray, np.ndarray]:
    """Argmax + DARK-UDP sub-pixel refinement.

    Args:
        heatmaps: (N, K, h, w) predicted heatmaps, numpy or torch (decoded on the tensor's device).
        blur_kernel: odd size of the Gaussian blur applied before the log (11 → σ 2.0).
        dxy: the mixed derivative of the Newton step. ``"udp"`` (default): the released 7-point
            formula, which uses only the (+1,+1)/(-1,-1) diagonal and so is *not* mirror-symmetric:
            decoding a mirrored map is not exactly the mirror of decoding the map. ``"dark"``: the
            4-point central difference of the DARK paper (the mirror-average of the 7-point
            formula), which makes decoding exactly mirror-equivariant.

    Returns:
        coords: (N, K, 2) float32 ``(x, y)`` in heatmap pixels; ``(-1, -1)`` where the map's maximum
            is ≤ 0 (no detection, as in the released decoder; those joints are not refined).
        scores: (N, K) float32, the maximum of each (unblurred) map.

    The released numerics (:func:`udp_decode_reference`): blur each whole map (11 × 11 Gaussian, zero
    padding), rescale it to the original maximum, L = log(clip(·, 1e-3, 50)), one Newton step at the
    integer argmax. Here only the 3 × 3 neighbourhood of the argmax is blurred, batched; the whole
    map is blurred only where the clip can be active (see ``_decode_chunk``). Same results to
    float64 rounding (tests: ≤ 1e-4 px).
    """
    if not isinstance(heatmaps, Tensor):
        array = np.asarray(heatmaps)
        if not (array.flags.c_contiguous and array.flags.writeable):
            array = np.array(array)   # torch.from_numpy shares memory; it wants a writable array
        heatmaps = torch.from_numpy(array)
    coords, scores = udp_decode_tensor(heatmaps, blur_kernel, dxy=dxy)
    return coords.cpu().numpy(), scores.cpu().numpy()


def heatmap_to_image(
    coords: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    heatmap_size: tuple[int, int],
) -> np.ndarray:
    """Map heatmap coordinates back to the image (rotation 0, as at test time).

    ``p_img = p_hm · s / (size_hm - 1) + c - s / 2`` per axis.

    Args:
        coords: (N, K, 2) ``(x, y)`` in heatmap pixels.
        center: (N, 2) box centres in image pixels.
        scale: (N, 2) padded box sizes ``(w, h)`` in image pixels.
        heatmap_size: ``(h, w)``.

    Returns:
        (N, K, 2) float64 image coordinates.
    """
    coords = np.asarray(coords, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64)[:, None, :]         # (N, 1, 2)
    scale = np.asarray(scale, dtype=np.float64)[:, None, :]
    hm_h, hm_w = heatmap_size
    return coords * scale / np.array([hm_w - 1, hm_h - 1]) + center - scale / 2.0


def flip_heatmaps(heatmaps: torch.Tensor, flip_indices: Sequence[int]) -> torch.Tensor:
    """Mirror heatmaps (N, K, h, w) along W and swap left/right joints.

    Output joint ``j`` is the mirrored input joint ``flip_indices[j]``. Under UDP the mirror
    ``x → w - 1 - x`` of the crop is exactly the mirror of the heatmap, so there is no one-pixel shift.
    """
    if heatmaps.shape[1] != len(flip_indices):
        raise ValueError(
            f"flip_heatmaps: {len(flip_indices)} flip indices for {heatmaps.shape[1]} heatmap channels"
        )
    index = torch.as_tensor(list(flip_indices), dtype=torch.long, device=heatmaps.device)
    return heatmaps.flip(-1).index_select(1, index)
