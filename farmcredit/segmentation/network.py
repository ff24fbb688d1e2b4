"""The cropland network: a per-date spectral encoder, masked temporal pooling, a small U-Net.

Every date goes through the same 1x1 encoder (so any number of dates works), masked dates are
left out of the mean/max/min pooling (so a fully masked date changes nothing), and the U-Net adds
spatial context. Convolutions pad by replicating the edge, so a 1x1 input (a labelled pixel)
behaves like a uniform field, and tiled inference matches a single pass (see ``ALIGN_PX`` and
``RECEPTIVE_RADIUS_PX``).
"""

from __future__ import annotations

import torch
from torch import nn

# Pooling levels: chip origins on multiples of this keep every pooling grid aligned to a full pass.
ALIGN_PX = 4
# No output pixel depends on input further than this (checked in tests by perturbation).
RECEPTIVE_RADIUS_PX = 22


def _conv3(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="replicate"), nn.ReLU(inplace=True))


class CroplandNet(nn.Module):
    """Per-pixel class logits from a variable-length season of partly available bands.

    Args:
        n_inputs: input channels per date, bands then spectral indices (missing ones are zero and flagged).
        n_classes: output classes (index 0 non-crop).
        width: channels at full resolution (1.5x and 2x at the coarser levels).
    """

    def __init__(self, n_inputs: int, n_classes: int, width: int = 32) -> None:
        super().__init__()
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

    def forward(self, reflectance: torch.Tensor, clear: torch.Tensor, band_available: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Args:
            reflectance: normalised, (batch, time, band, rows, cols); zero where unavailable or masked.
            clear: bool (batch, time, rows, cols); dates not clear at a pixel are ignored there.
            band_available: (batch, band) 1.0 for bands present in the input.

        Returns:
            Logits (batch, classes, rows, cols).
        """
        batch, steps, _, rows, cols = reflectance.shape
        flags = band_available[:, :, None, None].to(reflectance.dtype).expand(-1, -1, rows, cols)
        total = count = high = low = None
        # Dates one at a time: memory stays that of one date whatever the season length.
        for step in range(steps):
            x = torch.cat([reflectance[:, step] * flags, flags], dim=1)
            feature = self.date_encoder(x)
            mask = clear[:, step, None]
            weight = mask.to(feature.dtype)
            if total is None:
                total, count = feature * weight, weight
                high = torch.where(mask, feature, torch.full_like(feature, -torch.inf))
                low = torch.where(mask, feature, torch.full_like(feature, torch.inf))
            else:
                total, count = total + feature * weight, count + weight
                high = torch.where(mask, torch.maximum(high, feature), high)
                low = torch.where(mask, torch.minimum(low, feature), low)
        seen = count > 0
        mean = total / count.clamp(min=1.0)
        high = torch.where(seen, high, torch.zeros_like(high))
        low = torch.where(seen, low, torch.zeros_like(low))
        level1 = self.enc1(self.fuse(torch.cat([mean, high, low, seen.to(mean.dtype)], dim=1)))
        level2 = self.enc2(self.pool(level1))
        level3 = self.enc3(self.pool(level2))
        up2 = self.dec2(torch.cat([_upsample_to(level3, level2), level2], dim=1))
        up1 = self.dec1(torch.cat([_upsample_to(up2, level1), level1], dim=1))
        return self.head(torch.cat([up1, level1], dim=1))


def _upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Nearest 2x upsampling cropped to ``like``: pixel i takes coarse pixel i // 2, as the pooling grid."""
    up = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    return up[:, :, : like.shape[2], : like.shape[3]]


def crop_log_probability(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log P(crop) and log P(non-crop) from class logits (batch, classes, ...); crop = any class but 0."""
    log_p = torch.log_softmax(logits.float(), dim=1)
    return torch.logsumexp(log_p[:, 1:], dim=1), log_p[:, 0]
