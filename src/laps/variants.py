"""The temporal variants of a LAPS model, by name: plain data with no torch import, so that the
command line can list them without starting torch.

Each name maps to ``(attention kind, shift kind)``. Attention kinds: ``"frame"`` (per-frame 2D),
``"leap"`` (Leap Attention, one leap level per block), ``"joint"`` (all frames of a clip together).
Shift kinds: ``"none"``, ``"plain"`` (a fixed channel share moved one frame), ``"periodic"``
(Periodic Shift).
"""

VARIANTS: dict[str, tuple[str, str]] = {
    "base2d": ("frame", "none"),
    "joint": ("joint", "none"),
    "plain_shift": ("frame", "plain"),
    "ps": ("frame", "periodic"),
    "la": ("leap", "none"),
    "laps": ("leap", "periodic"),
}
