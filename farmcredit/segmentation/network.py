"""The cropland network: a per-date spectral encoder, masked temporal pooling, a small U-Net.

Every date goes through the same 1x1 encoder (so any number of dates works), masked dates are
left out of the mean/max/min pooling (so a fully masked date changes nothing), and the U-Net adds
spatial context; its decoder upsamples bilinearly (``card.UPSAMPLING``: v2 repeated each coarse
pixel, which drew blocks with straight edges into real probability maps). Convolutions pad by
replicating the edge, so a 1x1 input (a labelled pixel) behaves like a uniform field, and tiled
inference matches a single pass (see ``ALIGN_PX`` and ``RECEPTIVE_RADIUS_PX``). A chip whose
edges all lie inside the raster pads with zeros instead: no output it keeps sees its edges, and
the convolution pads without a padded copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

# Pooling levels: chip origins on multiples of this keep every pooling grid aligned to a full pass.
ALIGN_PX = 4
# No output pixel depends on input further than this (checked in tests by perturbation), for either upsampling.
RECEPTIVE_RADIUS_PX = 22
UPSAMPLE_MODES = ("nearest", "bilinear")


def _conv3(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="replicate"), nn.ReLU(inplace=True))


class CroplandNet(nn.Module):
    """Per-pixel class logits from a variable-length season of partly available bands.

    Args:
        n_inputs: input channels per date, bands then spectral indices (missing ones are zero and flagged).
        n_classes: output classes (index 0 non-crop).
        width: channels at full resolution (1.5x and 2x at the coarser levels).
        upsample: one of ``UPSAMPLE_MODES``, as ``card.UPSAMPLING`` names it for the card's family.
    """

    def __init__(self, n_inputs: int, n_classes: int, width: int = 32, upsample: str = "bilinear") -> None:
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.upsample = upsample
        w1, w2, w3 = width, width * 3 // 2, width * 2
        self.date_encoder = nn.Sequential(
            nn.Conv2d(2 * n_inputs, w1, 1), nn.ReLU(inplace=True), nn.Conv2d(w1, w1, 1), nn.ReLU(inplace=True)
        )
        self.fuse = nn.Sequential(nn.Conv2d(3 * w1 + 1, w1, 1), nn.ReLU(inplace=True))
        self.enc1 = _conv3(w1, w1)
        self.enc2 = _conv3(w1, w2)
        self.enc3 = nn.Sequential(_conv3(w2, w3), _conv3(w3, w3))
        self.dec2 = _conv3(w3 + w2, w2)
        self.dec1 = _conv3(w2 + w1, w1)
        self.head = nn.Conv2d(w1 + w1, n_classes, 1)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)

    def forward(self, reflectance: torch.Tensor, clear: torch.Tensor, band_available: torch.Tensor,
                interior: bool = False) -> torch.Tensor:
        """Class logits.

        Args:
            reflectance: normalised, (batch, time, band, rows, cols); zero where unavailable or masked.
            clear: bool (batch, time, rows, cols); dates not clear at a pixel are ignored there.
            band_available: 1.0 for bands present in the input, (band,) for the whole batch or (batch, band).
            interior: no chip of the batch touches a raster edge, and outputs within ``RECEPTIVE_RADIUS_PX`` of a chip
                edge are discarded: convolutions pad with zeros, which changes only those.

        Returns:
            Logits (batch, classes, rows, cols).
        """
        encode_date = self._date_encoding(band_available)
        total = high = low = None
        # Dates one at a time: memory stays that of one date whatever the season length.
        for step in range(reflectance.shape[1]):
            feature = encode_date(reflectance[:, step])
            hidden = ~clear[:, step, None]
            kept = feature.masked_fill(hidden, 0.0)
            top, bottom = feature.masked_fill(hidden, -torch.inf), feature.masked_fill(hidden, torch.inf)
            if total is None:
                total, high, low = kept, top, bottom
            else:
                total, high, low = total + kept, torch.maximum(high, top), torch.minimum(low, bottom)
        count = clear.sum(dim=1, keepdim=True)
        seen = count > 0
        mean = total / count.clamp(min=1).to(total.dtype)
        high, low = high.masked_fill(~seen, 0.0), low.masked_fill(~seen, 0.0)
        level1 = _run(self.enc1, self.fuse(torch.cat([mean, high, low, seen.to(mean.dtype)], dim=1)), interior)
        level2 = _run(self.enc2, self.pool(level1), interior)
        level3 = _run(self.enc3, self.pool(level2), interior)
        up2 = _run(self.dec2, torch.cat([_upsample_to(level3, level2, self.upsample), level2], dim=1), interior)
        up1 = _run(self.dec1, torch.cat([_upsample_to(up2, level1, self.upsample), level1], dim=1), interior)
        return self.head(torch.cat([up1, level1], dim=1))

    def _date_encoding(self, band_available: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The per-date encoder for inputs (batch, band, rows, cols) with that availability.

        Its first layer sees each band beside its availability flag. An unavailable band is zero,
        so the flags only add a bias, folded in here (in float32) rather than concatenated to every
        pixel; flags shared by the batch also zero the weights of unavailable bands.
        """
        first, rest = self.date_encoder[0], self.date_encoder[1:]
        n_inputs = band_available.shape[-1]
        flags = band_available.to(first.weight.dtype)
        weight, flag_weight = first.weight[:, :n_inputs], first.weight[:, n_inputs:, 0, 0]
        if flags.ndim == 1:
            bias = first.bias + (flag_weight * flags).sum(dim=1)
            weight = weight * flags[:, None, None]
            return lambda x: rest(F.conv2d(x, weight, bias))
        bias = (first.bias + (flag_weight[None] * flags[:, None]).sum(dim=2))[:, :, None, None]
        return lambda x: rest(F.conv2d(x * flags[:, :, None, None], weight) + bias)


def _run(block: nn.Sequential, x: torch.Tensor, interior: bool) -> torch.Tensor:
    """A block of 3x3 convolutions and ReLUs; with ``interior``, padding with zeros inside each convolution."""
    if not interior:
        return block(x)
    for layer in block.modules():
        if isinstance(layer, nn.Conv2d):
            x = F.conv2d(x, layer.weight, layer.bias, padding=1)
        elif not isinstance(layer, nn.Sequential):
            x = layer(x)
    return x


def _upsample_to(x: torch.Tensor, like: torch.Tensor, mode: str) -> torch.Tensor:
    """2x upsampling cropped to ``like``, on the pooling grid (coarse pixel i covers pixels 2i and 2i + 1): "nearest"
    repeats it; "bilinear" weighs it 3/4 against its neighbour 1/4 (an edge coarse pixel alone, as replicate padding).
    """
    batch, channels, rows, cols = x.shape
    if mode == "bilinear":
        up = F.interpolate(x, size=(2 * rows, 2 * cols), mode="bilinear", align_corners=False)
    else:
        up = x[:, :, :, None, :, None].expand(-1, -1, -1, 2, -1, 2).reshape(batch, channels, 2 * rows, 2 * cols)
    return up[:, :, : like.shape[2], : like.shape[3]]


def crop_log_probability(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log P(crop) and log P(non-crop) from class logits (batch, classes, ...); crop = any class but 0."""
    log_p = torch.log_softmax(logits.float(), dim=1)
    return torch.logsumexp(log_p[:, 1:], dim=1), log_p[:, 0]


def non_finite(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity: a damaged file or a diverged training."""
    return [key for key, tensor in tensors.items() if tensor.is_floating_point() and not tensor.isfinite().all()]
