"""The CNN baselines of the PTB-XL benchmark (Strodthoff et al. 2020, helme/ecg_ptbxl_benchmarking).

Re-implemented from their definitions, not copied, and kept layer-for-layer equal so parameter
counts match the published models (asserted in tests/test_models.py):

  xresnet1d101   fastai xresnet, 1-D: 3 ConvLayers stem (12->32->32->64, k5, first stride 2) +
                 maxpool, 33 bottleneck blocks [3, 4, 23, 3], 64->256 channels at every stage, k5
  inception1d    InceptionTime: 6 blocks, bottleneck 32, kernels 39/19/9 + maxpool branch, 32 filters
                 each, a residual shortcut every 3 blocks
  resnet1d_wang  Wang et al. 2017 ResNet: stem k7, 3 basic blocks with kernels [5, 3], 128 channels

All three end in the benchmark head (create_head1d with lin_ftrs=[128], ps=0.5):
  concat pool (max, avg) -> BN -> dropout 0.25 -> Linear(128) -> ReLU -> BN -> dropout 0.5 -> Linear(C)

Their training protocol is part of the model's declaration so the trainer needs no model names:
random 2.5-s crops for training; at test time 2.5-s windows every 1.25 s, aggregated with max over
the raw outputs (the benchmark's `aggregate_fn="max"` on logits). `sliding_window_logits` implements
the test-time half in plain torch.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from beat_ray.models.registry import register_model


class SignalModel(nn.Module):
    """Base for raw-signal models: `forward({"signal": (N, 12, T)})` (a bare tensor also works)."""

    input_kind = "signal"
    crop_s = 2.5          # training: one random crop of this length per record and epoch
    eval_win_s = 2.5      # evaluation: windows of this length ...
    eval_stride_s = 1.25  # ... every this many seconds ...
    eval_reduce = "max"   # ... aggregated over windows like this

    body: nn.Module
    head: nn.Module

    def forward(self, batch: dict[str, Tensor] | Tensor) -> Tensor:
        x = batch["signal"] if isinstance(batch, dict) else batch
        return self.head(self.body(x))


def sliding_window_logits(model: nn.Module, signal: Tensor, fs: float, win_s: float = 2.5,
                          stride_s: float = 1.25, reduce: Literal["max", "mean"] = "max") -> Tensor:
    """(N, 12, T) -> (N, C): logits of every full window, reduced over windows.

    Windows start at 0, stride, 2*stride, ... and the last one that fits entirely is kept (the
    benchmark drops shorter tail chunks), so 10 s at 2.5/1.25 s gives 7 windows. A record shorter
    than one window is scored whole (the concat-pool head accepts any length).
    """
    N, L, T = signal.shape
    win, stride = int(round(win_s * fs)), int(round(stride_s * fs))
    if T <= win:
        return model({"signal": signal})
    starts = range(0, T - win + 1, stride)
    windows = torch.stack([signal[..., s:s + win] for s in starts], dim=1)  # (N, n_win, 12, win)
    logits = model({"signal": windows.reshape(-1, L, win)}).view(N, len(starts), -1)
    return logits.amax(1) if reduce == "max" else logits.mean(1)


# ---------------------------------------------------------------------------------------------
# shared pieces

class ConcatPool1d(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x.amax(-1), x.mean(-1)], dim=1)  # max first, as in the benchmark


def benchmark_head(n_features: int, n_classes: int, hidden: int = 128) -> nn.Sequential:
    """create_head1d(nf, nc, lin_ftrs=[128], ps=0.5): dropout ps/2 before the hidden layer."""
    return nn.Sequential(
        ConcatPool1d(),
        nn.BatchNorm1d(2 * n_features), nn.Dropout(0.25), nn.Linear(2 * n_features, hidden), nn.ReLU(),
        nn.BatchNorm1d(hidden), nn.Dropout(0.5), nn.Linear(hidden, n_classes),
    )


def conv_bn(ni: int, nf: int, k: int, stride: int = 1, relu: bool = True, zero_bn: bool = False) -> nn.Sequential:
    """Conv (no bias, 'same' padding) -> BN -> ReLU: fastai's ConvLayer with bn_1st=True."""
    bn = nn.BatchNorm1d(nf)
    bn.zero_init = zero_bn  # read by init_cnn
    layers: list[nn.Module] = [nn.Conv1d(ni, nf, k, stride=stride, padding=(k - 1) // 2, bias=False), bn]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


def init_cnn(model: nn.Module, zero_init_last_bn: bool = True) -> None:
    """Kaiming-normal convs and linears, zero biases, BN weight 1 (0 where marked zero_init)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d):
            nn.init.constant_(m.weight, 0.0 if zero_init_last_bn and getattr(m, "zero_init", False) else 1.0)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------
# xresnet1d101

class XBottleneck(nn.Module):
    """1x1 -> kxk (stride) -> 1x1 (expansion 4); identity path = avgpool(2) if strided, 1x1 conv+BN if
    the width changes (only the very first block: 64 -> 256). The last BN starts at zero, so every
    block starts as the identity."""

    def __init__(self, ni: int, nh: int, nf: int, k: int, stride: int):
        super().__init__()
        self.convs = nn.Sequential(conv_bn(ni, nh, 1), conv_bn(nh, nh, k, stride),
                                   conv_bn(nh, nf, 1, relu=False, zero_bn=True))
        idpath: list[nn.Module] = []
        if stride != 1:
            idpath.append(nn.AvgPool1d(2, ceil_mode=True))
        if ni != nf:
            idpath.append(conv_bn(ni, nf, 1, relu=False))
        self.idpath = nn.Sequential(*idpath)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.convs(x) + self.idpath(x))


class XResNet1d(SignalModel):
    def __init__(self, n_classes: int, layers: tuple[int, ...] = (3, 4, 23, 3), in_channels: int = 12,
                 stem: tuple[int, ...] = (32, 32, 64), width: int = 64, expansion: int = 4,
                 kernel_size: int = 5, zero_init_last_bn: bool = True):
        super().__init__()
        szs = (in_channels, *stem)
        body: list[nn.Module] = [conv_bn(szs[i], szs[i + 1], kernel_size, stride=2 if i == 0 else 1)
                                 for i in range(len(stem))]
        body.append(nn.MaxPool1d(3, stride=2, padding=1))
        ni = stem[-1]
        for i, n_blocks in enumerate(layers):
            stage = []
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                stage.append(XBottleneck(ni, width, width * expansion, kernel_size, stride))
                ni = width * expansion
            body.append(nn.Sequential(*stage))
        self.body = nn.Sequential(*body)
        self.head = benchmark_head(ni, n_classes)
        init_cnn(self, zero_init_last_bn)


# ---------------------------------------------------------------------------------------------
# inception1d

class InceptionBlock(nn.Module):
    def __init__(self, ni: int, nb_filters: int, kernels: tuple[int, ...], bottleneck: int):
        super().__init__()
        self.bottleneck = nn.Conv1d(ni, bottleneck, 1, bias=False)
        self.convs = nn.ModuleList(nn.Conv1d(bottleneck, nb_filters, k, padding=(k - 1) // 2, bias=False)
                                   for k in kernels)
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1),
                                         nn.Conv1d(ni, nb_filters, 1, bias=False))
        self.bn_relu = nn.Sequential(nn.BatchNorm1d((len(kernels) + 1) * nb_filters), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        b = self.bottleneck(x)
        return self.bn_relu(torch.cat([c(b) for c in self.convs] + [self.pool_branch(x)], dim=1))


class InceptionBackbone(nn.Module):
    """Blocks with a 1x1-conv+BN shortcut from the input of every group of 3 blocks to its output."""

    def __init__(self, in_channels: int, depth: int, nb_filters: int, kernels: tuple[int, ...], bottleneck: int):
        super().__init__()
        assert depth % 3 == 0
        nf = (len(kernels) + 1) * nb_filters
        self.blocks = nn.ModuleList(InceptionBlock(in_channels if d == 0 else nf, nb_filters, kernels, bottleneck)
                                    for d in range(depth))
        self.shortcuts = nn.ModuleList(conv_bn(in_channels if s == 0 else nf, nf, 1, relu=False)
                                       for s in range(depth // 3))
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        res = x
        for d, block in enumerate(self.blocks):
            x = block(x)
            if d % 3 == 2:
                x = res = self.act(x + self.shortcuts[d // 3](res))
        return x


class Inception1d(SignalModel):
    def __init__(self, n_classes: int, in_channels: int = 12, depth: int = 6, nb_filters: int = 32,
                 kernels: tuple[int, ...] = (39, 19, 9), bottleneck: int = 32):
        super().__init__()
        self.body = InceptionBackbone(in_channels, depth, nb_filters, tuple(kernels), bottleneck)
        self.head = benchmark_head((len(kernels) + 1) * nb_filters, n_classes)
        init_cnn(self)


# ---------------------------------------------------------------------------------------------
# resnet1d_wang

class BasicBlock(nn.Module):
    def __init__(self, ni: int, nf: int, kernels: tuple[int, int], stride: int):
        super().__init__()
        self.convs = nn.Sequential(conv_bn(ni, nf, kernels[0], stride), conv_bn(nf, nf, kernels[1], relu=False))
        self.downsample = conv_bn(ni, nf, 1, stride, relu=False) if (stride != 1 or ni != nf) else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.convs(x) + self.downsample(x))


class ResNet1dWang(SignalModel):
    def __init__(self, n_classes: int, in_channels: int = 12, width: int = 128, n_blocks: int = 3,
                 kernels: tuple[int, int] = (5, 3), stem_kernel: int = 7):
        super().__init__()
        blocks = [BasicBlock(width, width, tuple(kernels), 1 if i == 0 else 2) for i in range(n_blocks)]
        self.body = nn.Sequential(conv_bn(in_channels, width, stem_kernel), *blocks)
        self.head = benchmark_head(width, n_classes)
        init_cnn(self)


# ---------------------------------------------------------------------------------------------
# registry

@register_model("xresnet1d101")
def xresnet1d101(n_classes: int, **kw) -> XResNet1d:
    return XResNet1d(n_classes, layers=(3, 4, 23, 3), **kw)


@register_model("inception1d")
def inception1d(n_classes: int, **kw) -> Inception1d:
    return Inception1d(n_classes, **kw)


@register_model("resnet1d_wang")
def resnet1d_wang(n_classes: int, **kw) -> ResNet1dWang:
    return ResNet1dWang(n_classes, **kw)
