"""ImageNet ResNets as torchvision builds them (ResNet-18/34/50/101/152, "v1.5"), and the pruned ones Liu et al. train.

The network: conv7x7/2 - BN - ReLU - maxpool3x3/2, four stages of 64, 128, 256, 512 planes (the first
at stride 1, the others subsampling in their first block), global average pool, one linear layer.
A **basic** block (ResNet-18/34) is conv3x3 (at the block's stride) - BN - ReLU - conv3x3 - BN, a
**bottleneck** block (ResNet-50+) conv1x1 - BN - ReLU - conv3x3 (at the block's stride: torchvision's
"v1.5") - BN - ReLU - conv1x1 to 4 x planes - BN; the shortcut is added and ReLU follows. A block that
changes shape projects its input with conv1x1 + BN (computed as subsample-then-1x1, as in
:mod:`prunestudy.arch.wrn`: the same function, parameters and FLOPs). The module's state-dict names
and shapes are torchvision's, so its pretrained weights load as they are.

Prunable, as ThiNet, L1-norm and He et al. prune these networks: each block's inner widths, ``c1``
(conv1's outputs) and for a bottleneck ``c2`` (conv2's outputs); block outputs (the residual width)
are not. A block any of whose groups is emptied has no branch and is its shortcut: the identity, or
ReLU(BN(projection)) in a stage's first block. That is how the Sparse Structure Selection networks are
specs of this family (:func:`sss_resnet50`): ResNet-50 with whole blocks emptied.

He et al.'s ResNet-50-2x also feeds conv1 only a selection of the block's input channels (their
"channel selection", Liu's ``cfg_2x``). A spec with ``selects`` has one selection per block (None: every
channel), each a prunable group of its own: the listed input channels that conv1 reads. There is no
BN before it in a post-activation block, so it has no scale for Network Slimming.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar

from prunestudy.arch.base import ArchSpec, Group, Layer, Slice, conv_group, conv_out, stages_by
from prunestudy.io.options import Range

PLANES: tuple[int, ...] = (64, 128, 256, 512)
STEM = 64
# depth -> (bottleneck, blocks per stage): torchvision's resnet18 ... resnet152
DEPTHS: dict[int, tuple[bool, tuple[int, ...]]] = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
}
THINET_KEEP = (30, 50, 70)  # ThiNet-30/50/70: percent of each block's inner widths kept
# Liu's README: blocks left per stage and whether the stage's first block is kept (else: its projection)
SSS_UNITS: dict[int, tuple[tuple[int, bool], ...]] = {
    41: ((0, False), (4, True), (6, True), (3, True)),
    32: ((1, False), (4, True), (4, True), (1, True)),
    26: ((0, False), (2, False), (5, False), (1, True)),
}
# He et al.'s ResNet-50-2x (Liu's regression-pruning/models/resnet_2x.py): per block, the input
# channels conv1 reads, conv1's outputs and conv2's outputs
CFG_2X: tuple[tuple[int, int, int], ...] = (
    (35, 64, 55), (101, 51, 39), (97, 50, 37),
    (144, 128, 106), (205, 105, 72), (198, 105, 72), (288, 128, 110),
    (278, 256, 225), (418, 209, 147), (407, 204, 158), (423, 212, 155), (412, 211, 148), (595, 256, 213),
    (606, 512, 433), (1222, 512, 437), (1147, 512, 440),
)  # fmt: skip
VARIANTS = ("thinet30", "thinet50", "thinet70", "resnet26", "resnet32", "resnet41", "2x")


@dataclass(frozen=True)
class ResBlock:
    """One residual block. ``select`` is None where the spec has no channel selections."""

    name: str  # the module path, e.g. "layer2.0"
    stage: int
    in_ch: int
    mids: tuple[int, ...]  # (c1,) basic, (c1, c2) bottleneck
    out_ch: int
    stride: int
    select: tuple[int, ...] | None

    @property
    def reads(self) -> int:
        """The input channels conv1 reads."""
        return self.in_ch if self.select is None else len(self.select)

    @property
    def live(self) -> bool:
        return self.reads > 0 and min(self.mids) > 0

    @property
    def projects(self) -> bool:
        return self.in_ch != self.out_ch or self.stride != 1


@dataclass(frozen=True)
class ImageNetResNetSpec(ArchSpec):
    """``mids`` lists every block's inner widths in order; ``selects`` is () or one entry per block."""

    family: ClassVar[str] = "imagenet_resnet"
    bottleneck: bool
    blocks: tuple[int, ...]
    mids: tuple[int, ...]
    planes: tuple[int, ...] = PLANES
    stem: int = STEM
    selects: tuple[tuple[int, ...] | None, ...] = ()
    num_classes: int = 1000
    in_channels: int = 3
    image_size: int = 224
    zero_init_residual: bool = False

    def __post_init__(self) -> None:
        for name in ("blocks", "mids", "planes"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        selects = tuple(None if s is None else tuple(int(i) for i in s) for s in self.selects)
        object.__setattr__(self, "selects", selects)
        if not self.blocks or len(self.blocks) != len(self.planes) or min(self.blocks) < 1:
            raise ValueError(f"one positive block count per stage of planes {self.planes}, got {self.blocks}")
        if min(self.stem, *self.planes) < 1 or (self.mids and min(self.mids) < 0):
            raise ValueError("stem and planes must be positive and mids non-negative")
        if len(self.mids) != self.n_blocks * self.per_block:
            raise ValueError(f"expected {self.n_blocks * self.per_block} mids, got {len(self.mids)}")
        if selects and len(selects) != self.n_blocks:
            raise ValueError(f"expected no selections or one per block ({self.n_blocks}), got {len(selects)}")
        if self.image_size < 1 or self.num_classes < 1:
            raise ValueError("image_size and num_classes must be positive")
        for b in self.block_specs():
            if b.select is not None and not _valid_select(b.select, b.in_ch):
                raise ValueError(f"block {b.name} selects {b.select}: distinct channels below {b.in_ch} expected")

    @staticmethod
    def paper_name(options: Mapping[str, Any]) -> str:
        """ResNet-<depth> as Liu's tables print it; a pruned ``variant`` keeps its base's name (ResNet-50)."""
        depth = options.get("depth", 50)
        if options.get("blocks") is not None:
            depth = 2 + sum(options["blocks"]) * (3 if DEPTHS.get(depth, (True,))[0] else 2)
        return f"ResNet-{depth}"

    @property
    def n_blocks(self) -> int:
        return sum(self.blocks)

    @property
    def per_block(self) -> int:
        return 2 if self.bottleneck else 1

    @property
    def expansion(self) -> int:
        return 4 if self.bottleneck else 1

    @property
    def depth(self) -> int:
        """Conv and linear layers on the longest path, as the ResNet names count them."""
        return 2 + self.n_blocks * (3 if self.bottleneck else 2)

    def block_specs(self) -> list[ResBlock]:
        out, cin, k = [], self.stem, self.per_block
        for s, (n, planes) in enumerate(zip(self.blocks, self.planes, strict=True)):
            for j in range(n):
                i, cout = len(out), planes * self.expansion
                stride = 2 if j == 0 and s > 0 else 1
                select = (tuple(range(cin)) if self.selects[i] is None else self.selects[i]) if self.selects else None
                out.append(ResBlock(f"layer{s + 1}.{j}", s, cin, self.mids[k * i : k * i + k], cout, stride, select))
                cin = cout
        return out

    def groups(self) -> tuple[Group, ...]:
        return tuple(g for b in self.block_specs() for g in _block_groups(b))

    def stages(self) -> tuple[tuple[int, ...], ...]:
        """torchvision's layer1..layer4: the groups of one stage's blocks, as Liu's cfg lists them."""
        per = self.per_block + bool(self.selects)
        return stages_by([b.stage for b in self.block_specs() for _ in range(per)])

    def with_widths(self, widths: Sequence[int]) -> ImageNetResNetSpec:
        """Selections of a new width keep their first channels, or add the lowest unselected ones."""
        it, mids, selects = iter(widths), [], []
        for b in self.block_specs():
            if b.select is not None:
                selects.append(_resize(b.select, int(next(it)), b.in_ch))
            mids += [int(next(it)) for _ in b.mids]
        if next(it, None) is not None:
            raise ValueError(f"more widths than the {len(self.groups())} groups of {self.spec_id}")
        return replace(self, mids=tuple(mids), selects=self._canonical(selects) if self.selects else ())

    def kept(self, keep: Mapping[str, Sequence[int]]) -> ImageNetResNetSpec:
        """Widths as any family; a selection keeps the channels at the positions kept."""
        spec = ArchSpec.kept(self, keep)
        if not self.selects:
            return spec
        selects = []
        for b in self.block_specs():
            pos = keep.get(f"{b.name}.select")
            selects.append(b.select if pos is None else tuple(b.select[p] for p in pos))
        return replace(spec, selects=self._canonical(selects))

    def _canonical(self, selects: list[tuple[int, ...]]) -> tuple[tuple[int, ...] | None, ...]:
        """Every channel in order is written None, so that equal networks have one spec and one id."""
        ins = [b.in_ch for b in self.block_specs()]
        return tuple(None if s == tuple(range(w)) else s for s, w in zip(selects, ins, strict=True))

    def layers(self) -> tuple[Layer, ...]:
        size = conv_out(self.image_size, 2)
        out = [Layer("conv", self.in_channels, self.stem, 7, size), Layer("bn", self.stem, self.stem)]
        size = conv_out(size, 2)  # the max pool
        for b in self.block_specs():
            in_size, size = size, conv_out(size, b.stride)
            out += _block_layers(b, in_size, size)
        w = self.planes[-1] * self.expansion
        return (*out, Layer("linear", w, self.num_classes))

    @property
    def id_prefix(self) -> str:
        return f"imagenet-resnet{self.depth}"


def _block_groups(b: ResBlock) -> list[Group]:
    """[selection], c1 (conv1 -> bn1 -> conv2) and, in a bottleneck, c2 (conv2 -> bn2 -> conv3)."""
    p, out = b.name, []
    if b.select is not None:
        out.append(Group(f"{p}.select", len(b.select), (Slice(f"{p}.conv1.weight", 1),)))
    for j, width in enumerate(b.mids, start=1):
        consumer = f"{p}.conv{j + 1}.weight"
        out.append(conv_group(f"{p}.c{j}", width, f"{p}.conv{j}", f"{p}.bn{j}", consumer, f"{p}.tap{j}"))
    return out


def _block_layers(b: ResBlock, in_size: int, size: int) -> list[Layer]:
    """The projection, then the branch if live (a bottleneck's conv1 runs at the input's size)."""
    out = [Layer("conv", b.in_ch, b.out_ch, 1, size), Layer("bn", b.out_ch, b.out_ch)] if b.projects else []
    if not b.live:
        return out
    if len(b.mids) == 2:
        c1, c2 = b.mids
        out += [Layer("conv", b.reads, c1, 1, in_size), Layer("bn", c1, c1), Layer("conv", c1, c2, 3, size)]
        out += [Layer("bn", c2, c2), Layer("conv", c2, b.out_ch, 1, size)]
    else:
        (c1,) = b.mids
        out += [Layer("conv", b.reads, c1, 3, size), Layer("bn", c1, c1), Layer("conv", c1, b.out_ch, 3, size)]
    return [*out, Layer("bn", b.out_ch, b.out_ch)]


def _valid_select(select: tuple[int, ...], width: int) -> bool:
    return len(set(select)) == len(select) and all(0 <= i < width for i in select)


def _resize(select: tuple[int, ...], width: int, available: int) -> tuple[int, ...]:
    if width <= len(select):
        return select[:width]
    taken = set(select)
    extra = [i for i in range(available) if i not in taken]
    return select + tuple(extra[: width - len(select)])


def _scaled(c: int, width: float) -> int:
    return max(1, round(c * width))


def imagenet_resnet(
    depth: Annotated[int, Range(min=18)] = 50,
    *,
    blocks: Sequence[int] | None = None,
    width: Annotated[float, Range(gt=0)] = 1.0,
    variant: str | None = None,
    zero_init_residual: bool = False,
    num_classes: int = 1000,
    in_channels: int = 3,
    image_size: int = 224,
) -> ImageNetResNetSpec:
    """torchvision's ResNet-``depth`` (18, 34, 50, 101, 152); ``blocks`` overrides the blocks per stage,
    ``width`` scales every channel count, and ``variant`` names a pruned ResNet-50 of Liu et al.'s
    ImageNet tables (:data:`VARIANTS`: ThiNet-30/50/70, SSS's ResNet-26/32/41, He et al.'s 2x)."""
    if depth not in DEPTHS:
        raise ValueError(f"ImageNet ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
    bottleneck, default = DEPTHS[depth]
    blocks = tuple(default if blocks is None else blocks)
    planes = tuple(_scaled(p, width) for p in PLANES)
    mids = tuple(p for p, n in zip(planes, blocks, strict=True) for _ in range(n) for _ in range(1 + bottleneck))
    spec = ImageNetResNetSpec(
        bottleneck, blocks, mids, planes, _scaled(STEM, width), (), num_classes, in_channels, image_size,
        zero_init_residual,
    )  # fmt: skip
    return spec if variant is None else _variant(spec, variant, depth, blocks != default)


def _variant(spec: ImageNetResNetSpec, variant: str, depth: int, custom: bool) -> ImageNetResNetSpec:
    if variant not in VARIANTS:
        raise ValueError(f"unknown ImageNet ResNet variant {variant!r}; expected one of {list(VARIANTS)}")
    if depth != 50 or custom or spec.planes != PLANES:
        raise ValueError(f"variant {variant!r} prunes the standard ResNet-50 (depth 50, width 1, default blocks)")
    if variant.startswith("thinet"):
        return thinet_resnet50(int(variant.removeprefix("thinet")), base=spec)
    if variant == "2x":
        return resnet50_2x(base=spec)
    return sss_resnet50(int(variant.removeprefix("resnet")), base=spec)


def _base50(base: ImageNetResNetSpec | None) -> ImageNetResNetSpec:
    return imagenet_resnet(50) if base is None else base


def thinet_resnet50(keep: int, base: ImageNetResNetSpec | None = None) -> ImageNetResNetSpec:
    """ThiNet-30/50/70 (Luo et al.; Liu's ``cfg_thinet*``): every block's c1 and c2 at ``keep`` percent of
    its planes, rounded down (19/38/76/153 for ThiNet-30, 44/89/179/358 for ThiNet-70)."""
    if keep not in THINET_KEEP:
        raise ValueError(f"ThiNet keeps one of {THINET_KEEP} percent, got {keep}")
    spec = _base50(base)
    return spec.with_widths([p * keep // 100 for b in spec.block_specs() for p in [b.out_ch // 4] for _ in b.mids])


def sss_resnet50(depth: int, base: ImageNetResNetSpec | None = None) -> ImageNetResNetSpec:
    """Sparse Structure Selection's ResNet-26/32/41 as Liu's README gives them: per stage, the blocks left
    and whether the first (projecting) block is among them; the others are emptied, the first block to
    its projection. Which identity blocks go is immaterial: they are alike."""
    if depth not in SSS_UNITS:
        raise ValueError(f"SSS pruned ResNet-50 to depth {sorted(SSS_UNITS)}, not {depth}")
    spec = _base50(base)
    widths = []
    for (left, first), n, b0 in zip(SSS_UNITS[depth], spec.blocks, _firsts(spec), strict=True):
        alive = [first, *([True] * (left - first)), *([False] * (n - 1 - (left - first)))]
        widths += [w if on else 0 for on, b in zip(alive, spec.block_specs()[b0 : b0 + n], strict=True) for w in b.mids]
    return spec.with_widths(widths)


def _firsts(spec: ImageNetResNetSpec) -> list[int]:
    """The index of each stage's first block."""
    return [sum(spec.blocks[:s]) for s in range(len(spec.blocks))]


def resnet50_2x(base: ImageNetResNetSpec | None = None, selects: Sequence[Sequence[int]] | None = None):
    """He et al.'s ResNet-50-2x (channel pruning; Liu's ``cfg_2x``): each block's conv1 reads a selection
    of its input channels. Which channels He et al. kept is in Liu's ``filter.pkl``, not here: by default
    each selection is the block's first channels (the same architecture, params and FLOPs); ``selects``
    gives the real ones, one per block."""
    spec = _base50(base)
    chosen = [tuple(range(n)) for n, _, _ in CFG_2X] if selects is None else [tuple(s) for s in selects]
    if [len(s) for s in chosen] != [n for n, _, _ in CFG_2X]:
        raise ValueError("ResNet-50-2x needs one selection per block, of cfg_2x's widths")
    mids = tuple(w for _, c1, c2 in CFG_2X for w in (c1, c2))
    return replace(spec, mids=mids, selects=spec._canonical(chosen))
