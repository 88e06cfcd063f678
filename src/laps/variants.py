"""The temporal variants of a LAPS model, by name: plain data with no torch import, so that the
command line can list them without starting torch.

Each name maps to ``(attention kind, shift kind)``; a kind is an entry of
:data:`laps.models.temporal.ATTENTION_KINDS` (``"frame"``: per-frame 2D, ``"leap"``: Leap Attention,
one leap level per block, ``"joint"``: all frames of a clip together) or
:data:`laps.models.temporal.SHIFT_KINDS` (``"none"``, ``"plain"``: a fixed channel share moved one
frame, ``"periodic"``: Periodic Shift). A new variant is one line here; every command (``laps train``,
``laps bench --variants``, ``laps flops``) takes the names of this table.
"""

VARIANTS: dict[str, tuple[str, str]] = {
    "base2d": ("frame", "none"),
    "joint": ("joint", "none"),
    "plain_shift": ("frame", "plain"),
    "ps": ("frame", "periodic"),
    "la": ("leap", "none"),
    "laps": ("leap", "periodic"),
}
