"""The workloads: shapes, cells and sizes of everything ``compare.py`` measures, the names of the
configurations on its command line, and the FLOPs of a forward.

A configuration id is ``"<group>-<cell>"`` (``"B-LSTM"``, ``"mem-C-GRU"``) or ``"lm"``.
"""


class Shape:
    """Sizes of one workload: batch, steps, inputs, hidden units, layers, bidirectional."""

    def __init__(self, B, T, I, H, layers=1, bidir=False):  # noqa: E741 - the usual names
        self.B, self.T, self.I, self.H, self.layers, self.bidir = B, T, I, H, layers, bidir

    @property
    def D(self):
        return 2 if self.bidir else 1

    def as_dict(self):
        return dict(B=self.B, T=self.T, I=self.I, H=self.H, layers=self.layers, bidir=self.bidir)

    def label(self):
        s = f"B{self.B} T{self.T} I{self.I} H{self.H}"
        if self.layers > 1:
            s += f" {self.layers}L"
        if self.bidir:
            s += " bidir"
        return s


#: gate blocks of each cell (the ``G`` of :func:`forward_flops`)
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
LATENCY = Shape(1, 100, 64, 128)
#: the shape of every group (a memory group measures the shape of its timing group)
SHAPES = {
    "latency": LATENCY,
    "stream": LATENCY,
    "B": Shape(32, 100, 128, 256),
    "C": Shape(64, 50, 256, 512),
    "D": Shape(32, 100, 128, 256, layers=2, bidir=True),
}
for _g in ("B", "C", "D"):
    SHAPES["mem-" + _g] = SHAPES[_g]
#: the cells measured in every group
GROUP_CELLS = {
    "latency": ("LSTM", "GRU", "RNN"),
    "stream": ("LSTM", "GRU", "RNN"),
    "B": ("LSTM", "GRU", "RNN"),
    "C": ("LSTM", "GRU"),
    "D": ("LSTM", "GRU"),
    "mem-B": ("LSTM", "GRU", "RNN"),
    "mem-C": ("LSTM", "GRU"),
    "mem-D": ("LSTM", "GRU"),
}
#: the char language model: vocabulary, embedding, hidden, streams, truncation length, Adam's
#: learning rate, gradient clipping norm
LM = dict(V=96, E=64, H=256, B=32, bptt=64, lr=1e-3, clip=5.0)
#: names on the command line that stand for several groups
ALIASES = {
    "train": ["B", "C", "D"],
    "memory": ["mem-B", "mem-C", "mem-D"],
    "mem": ["mem-B", "mem-C", "mem-D"],
}
ALL_CONFIGS = [f"{g}-{c}" for g in GROUP_CELLS for c in GROUP_CELLS[g]] + ["lm"]
ALIASES["all"] = ALL_CONFIGS
DEFAULT_CONFIGS = ["latency", "stream", "B", "C", "D", "lm", "memory"]
QUICK_CONFIGS = ["latency", "stream", "B", "C-LSTM", "D-LSTM", "lm", "mem-B-LSTM"]


# ====================================================================================== names
def parse_configs(tokens):
    """Expand group names and aliases into config ids (``"B-LSTM"``, ``"lm"``, ...), in the
    canonical order, without duplicates. Raise ``ValueError`` naming the valid choices."""
    chosen = set()
    for tok in tokens:
        for part in str(tok).split(","):
            part = part.strip()
            if not part:
                continue
            key = part.lower()
            if key in ALIASES:
                chosen.update(parse_configs(ALIASES[key]))
                continue
            group = {g.lower(): g for g in GROUP_CELLS}.get(key)
            if group is not None:
                chosen.update(f"{group}-{c}" for c in GROUP_CELLS[group])
                continue
            if key == "lm":
                chosen.add("lm")
                continue
            match = {c.lower(): c for c in ALL_CONFIGS}.get(key)
            if match is None:
                raise ValueError(
                    f"unknown config {part!r}; choose groups {sorted(GROUP_CELLS) + ['lm']}, "
                    f"aliases "
                    f"{sorted(ALIASES)} or cells such as {ALL_CONFIGS[:3]} (all: {ALL_CONFIGS})."
                )
            chosen.add(match)
    return [c for c in ALL_CONFIGS if c in chosen]


def split_config(cid):
    """``"mem-B-LSTM"`` -> ``("mem-B", "LSTM")``; ``"lm"`` -> ``("lm", "LSTM")``."""
    if cid == "lm":
        return "lm", "LSTM"
    group, cell = cid.rsplit("-", 1)
    return group, cell


# ====================================================================================== FLOPs
def forward_flops(cell, shape):
    """FLOPs of the gate products of one forward: ``2 B G H (I + H)`` per step and
    layer-direction."""
    G, H, total = GATES[cell], shape.H, 0
    for layer in range(shape.layers):
        size = shape.I if layer == 0 else shape.D * H
        total += shape.D * 2 * shape.B * G * H * (size + H)
    return total * shape.T
