"""A YOLOv8n-class detector built from code in PyTorch and exported to ONNX (random weights).

The architecture follows YOLOv8n: Conv-BN-SiLU stems, C2f blocks (split, bottlenecks, concat),
SPPF, an FPN/PAN neck with nearest upsampling and concats, and the anchor-free head with
Distribution Focal Loss decoding (softmax over 16 bins, a 1x1 conv with fixed weights), anchors
and strides computed from the feature maps' shapes, box decoding and class sigmoids.

    python benchmarks/yolo_like.py OUT.onnx [--dynamic-batch] [--size 640]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

__all__ = ["YoloLike", "export"]


class Conv(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool) -> None:
        super().__init__()
        self.cv1, self.cv2, self.add = Conv(c, c, 3), Conv(c, c, 3), shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False) -> None:
        super().__init__()
        self.c = c2 // 2
        self.cv1 = Conv(c1, 2 * self.c)
        self.cv2 = Conv((2 + n) * self.c, c2)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        self.cv1, self.cv2 = Conv(c1, c1 // 2), Conv(c1 * 2, c2)
        self.m = nn.MaxPool2d(5, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class Detect(nn.Module):
    def __init__(self, classes: int, channels: tuple[int, ...], bins: int = 16) -> None:
        super().__init__()
        self.no, self.bins, self.strides = classes + 4 * bins, bins, (8, 16, 32)
        c2, c3 = max(16, channels[0] // 4, 4 * bins), max(channels[0], min(classes, 100))
        self.box = nn.ModuleList(nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3),
                                               nn.Conv2d(c2, 4 * bins, 1)) for c in channels)
        self.cls = nn.ModuleList(nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3),
                                               nn.Conv2d(c3, classes, 1)) for c in channels)
        self.dfl = nn.Conv2d(bins, 1, 1, bias=False).requires_grad_(False)
        self.dfl.weight.data[:] = torch.arange(bins, dtype=torch.float).view(1, bins, 1, 1)

    def _anchors(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        points, strides = [], []
        for f, stride in zip(feats, self.strides):
            h, w = f.shape[2:]
            sx = torch.arange(w, device=f.device, dtype=f.dtype) + 0.5
            sy = torch.arange(h, device=f.device, dtype=f.dtype) + 0.5
            yy, xx = torch.meshgrid(sy, sx, indexing="ij")
            points.append(torch.stack((xx, yy), -1).view(-1, 2))
            strides.append(torch.full((h * w, 1), stride, dtype=f.dtype, device=f.device))
        return torch.cat(points).transpose(0, 1), torch.cat(strides).transpose(0, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        b = feats[0].shape[0]
        outs = [torch.cat((bx(f), cl(f)), 1) for f, bx, cl in zip(feats, self.box, self.cls)]
        x = torch.cat([o.view(b, self.no, -1) for o in outs], 2)
        box, cls = x.split((4 * self.bins, self.no - 4 * self.bins), 1)
        a = box.shape[2]
        dist = self.dfl(box.view(b, 4, self.bins, a).transpose(2, 1).softmax(1)).view(b, 4, a)
        anchors, strides = self._anchors(feats)
        lt, rb = dist.chunk(2, 1)
        x1y1, x2y2 = anchors.unsqueeze(0) - lt, anchors.unsqueeze(0) + rb
        boxes = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
        return torch.cat((boxes, cls.sigmoid()), 1)


class YoloLike(nn.Module):
    """YOLOv8n's layout (width 0.25, depth 0.33), 80 classes."""

    def __init__(self, classes: int = 80) -> None:
        super().__init__()
        self.stem = nn.Sequential(Conv(3, 16, 3, 2), Conv(16, 32, 3, 2), C2f(32, 32, 1, True),
                                  Conv(32, 64, 3, 2), C2f(64, 64, 2, True))
        self.p4 = nn.Sequential(Conv(64, 128, 3, 2), C2f(128, 128, 2, True))
        self.p5 = nn.Sequential(Conv(128, 256, 3, 2), C2f(256, 256, 1, True), SPPF(256, 256))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.n4, self.n3 = C2f(384, 128), C2f(192, 64)
        self.d3, self.m4 = Conv(64, 64, 3, 2), C2f(192, 128)
        self.d4, self.m5 = Conv(128, 128, 3, 2), C2f(384, 256)
        self.detect = Detect(classes, (64, 128, 256))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p3 = self.stem(x)
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        n4 = self.n4(torch.cat((self.up(p5), p4), 1))
        o3 = self.n3(torch.cat((self.up(n4), p3), 1))
        o4 = self.m4(torch.cat((self.d3(o3), n4), 1))
        o5 = self.m5(torch.cat((self.d4(o4), p5), 1))
        return self.detect([o3, o4, o5])


def export(path: str, dynamic_batch: bool = False, size: int = 640) -> None:
    """Write the detector (eval mode, seeded random weights) to ``path`` as ONNX opset 17."""
    torch.manual_seed(0)
    model = YoloLike().eval()
    x = torch.rand(1, 3, size, size)
    axes = {"images": {0: "batch"}, "output0": {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(model, (x,), path, input_names=["images"], output_names=["output0"],
                      opset_version=17, dynamic_axes=axes, dynamo=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--dynamic-batch", action="store_true")
    parser.add_argument("--size", type=int, default=640)
    args = parser.parse_args()
    export(args.out, args.dynamic_batch, args.size)


if __name__ == "__main__":
    main()
