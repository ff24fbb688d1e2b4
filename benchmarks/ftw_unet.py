"""An FTW-style field segmentation network, the model a user would otherwise run, for speed comparisons only.

Fields of The World's baseline is a U-Net (segmentation_models_pytorch) on an EfficientNet-B5
encoder taking two dates of red, green, blue and NIR stacked (8 channels) with three classes.
This builds the same shape from torchvision alone: EfficientNet-B5's stages as the encoder (its
first convolution taking 8 channels; skips at strides 2, 4, 8 and 16, the bottleneck at 32; the
stride-2 skip is stage 1's 24 channels, where smp takes the stem's 48, a slightly lighter decoder) and
smp's decoder (channels 256, 128, 64, 32, 16, each block nearest 2x upsampling, the skip
concatenated, two 3x3 convolutions with batch norm and ReLU). Weights are random: only its speed
is measured.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import efficientnet_b5

DECODER_CHANNELS = (256, 128, 64, 32, 16)
# torchvision EfficientNet-B5 ``features`` stages whose outputs are the skips (strides 2, 4, 8, 16) and the
# bottleneck (stride 32); stage 8, the 1x1 convolution to 2048 channels, is left out as smp does.
SKIP_STAGES = (1, 2, 3, 5)
LAST_STAGE = 7


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class FtwStyleUNet(nn.Module):
    """U-Net on an EfficientNet-B5 encoder: (batch, in_channels, H, W) to (batch, classes, H, W), H and W / 32."""

    def __init__(self, in_channels: int = 8, classes: int = 3) -> None:
        super().__init__()
        stages = efficientnet_b5(weights=None).features[: LAST_STAGE + 1]
        stem = stages[0][0]
        stages[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, stride=2, padding=1, bias=False)
        self.stages = stages
        with torch.no_grad():
            widths = [x.shape[1] for x in self._encode(torch.zeros(1, in_channels, 64, 64))]
        skips, bottleneck = widths[-2::-1] + [0], widths[-1]
        ins = [bottleneck, *DECODER_CHANNELS[:-1]]
        self.decoder = nn.ModuleList(
            nn.Sequential(_conv_bn_relu(c_in + skip, c_out), _conv_bn_relu(c_out, c_out))
            for c_in, skip, c_out in zip(ins, skips, DECODER_CHANNELS)
        )
        self.head = nn.Conv2d(DECODER_CHANNELS[-1], classes, 3, padding=1)

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The skip features, finest first, then the bottleneck."""
        features = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in SKIP_STAGES or index == LAST_STAGE:
                features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits at the input's resolution."""
        *skips, x = self._encode(x)
        for block, skip in zip(self.decoder, [*skips[::-1], None]):
            x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(x if skip is None else torch.cat([x, skip], dim=1))
        return self.head(x)
