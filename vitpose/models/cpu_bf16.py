"""Convolutions of the decoders that stay fast in bf16 on CPUs without bf16 convolution kernels.

On x86 CPUs without AVX512-BF16 / AMX (oneDNN's bf16 convolutions need them), PyTorch runs a bf16
``conv_transpose2d`` with its naive reference loop: measured here (AVX2, ViTPose-B classic head) 35 s
for two images, 64 % of a bf16 forward pass, against 0.2 s in fp32. These drop-in subclasses of the
torch layers (same parameters, same state-dict keys) compute in fp32 in that case only — bf16 input or
bf16 autocast, on such a CPU — and return the bf16 result the layer would have returned. The
backbone's matrix products (≈ 92 % of ViTPose-B's FLOPs) stay in bf16. Everywhere else (GPU, fp32,
CPUs with bf16 kernels) they are the plain torch layers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LOW = (torch.bfloat16, torch.float16)


_NATIVE: dict[torch.dtype, bool] = {}


def _native(dtype: torch.dtype) -> bool:
    """Whether oneDNN has kernels for `dtype` convolutions on this CPU (asked once per dtype)."""
    if dtype not in _NATIVE:
        check = (torch.ops.mkldnn._is_mkldnn_bf16_supported if dtype == torch.bfloat16
                 else torch.ops.mkldnn._is_mkldnn_fp16_supported)
        _NATIVE[dtype] = bool(check())
    return _NATIVE[dtype]


def _emulated_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The low precision `x` would be convolved in on a CPU lacking kernels for it, else None."""
    if x.device.type != "cpu":
        return None
    if x.dtype in _LOW:
        low = x.dtype
    elif torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") in _LOW:
        low = torch.get_autocast_dtype("cpu")
    else:
        return None
    return None if _native(low) else low


def _fp32(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.float()


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` computed in fp32 where the CPU has no kernel for the low precision."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        low = _emulated_dtype(x)
        if low is None:
            return super().forward(x, output_size)
        padding = self._output_padding(x, output_size, self.stride, self.padding, self.kernel_size, 2,
                                       self.dilation)
        with torch.autocast("cpu", enabled=False):
            out = F.conv_transpose2d(x.float(), self.weight.float(), _fp32(self.bias), self.stride,
                                     self.padding, padding, self.groups, self.dilation)
        return out.to(low)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` computed in fp32 where the CPU has no kernel for the low precision."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = _emulated_dtype(x)
        if low is None:
            return super().forward(x)
        with torch.autocast("cpu", enabled=False):
            out = self._conv_forward(x.float(), self.weight.float(), _fp32(self.bias))
        return out.to(low)
