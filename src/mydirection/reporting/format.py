"""How a registry number is printed: thousands separators, the minus sign, percentages,
percentage points, p-values (``<0.001``, ``>0.999``), and sizes without a sign."""

from __future__ import annotations

MINUS = "\u2212"

_DEFAULT_DECIMALS = {
    "proportion": 1,
    "pp": 1,
    "mean": 2,
    "ratio": 2,
    "estimate": 2,
    "days": 0,
    "index": 1,
    "gamma": 2,
    "seconds": 1,
}


def _signed(text: str) -> str:
    return MINUS + text[1:] if text.startswith("-") else text


def _fixed(value: float, decimals: int, *, sign: bool = False, thousands: bool = True) -> str:
    spec = f"{'+' if sign else ''}{',' if thousands else ''}.{decimals}f"
    text = format(value, spec)
    if float(text.replace(",", "").lstrip("+")) == 0:  # no "-0.0" / "+0.0"
        text = format(0.0, f".{decimals}f")
    return _signed(text)


def format_display(value, kind: str, decimals: int | None = None, *, signed: bool = True) -> str:
    """How a number is printed in the report (suppression is decided elsewhere:
    :mod:`mydirection.reporting.disclosure`).

    counts ``1,234``; proportions ``12.3%``; percentage-point differences ``+1.2 pp`` (the
    value is a difference of proportions); p-values ``0.042``, ``<0.001`` or ``>0.999``;
    days ``123``; seconds ``1.5 s``; other kinds plain decimals; booleans ``yes``/``no``; a
    missing value ``n/a``. Negative numbers use the minus sign U+2212. ``signed=False``
    prints a size without a sign (its absolute value: a minimum detectable effect, an SD).
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "text" or isinstance(value, str):
        return str(value)
    if isinstance(value, list | tuple):
        return ", ".join(format_display(v, kind, decimals, signed=signed) for v in value)
    if not signed:
        value = abs(value)
    d = _DEFAULT_DECIMALS.get(kind, 2) if decimals is None else decimals
    if kind == "count":
        return _signed(f"{int(round(value)):,}")
    if kind == "proportion":
        return _fixed(100 * value, d) + "%"
    if kind == "pp":
        return _fixed(100 * value, d, sign=signed) + " pp"
    if kind == "p_value":
        if value < 0.001:
            return "<0.001"
        if value > 0.999:
            return ">0.999"
        return f"{value:.3f}"
    if kind == "seconds":
        return _fixed(value, d) + " s"
    return _fixed(value, d)


def format_config_value(value) -> str:
    """A config value as shown in the methods appendix."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _signed(repr(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(format_config_value(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {format_config_value(v)}" for k, v in sorted(value.items()))
    return _signed(str(value))


def unsigned(display: str) -> str:
    """A printed number without its sign (``−1.83`` -> ``1.83``, ``+8.7 pp`` -> ``8.7 pp``).

    For sizes (a minimum detectable effect, an SD) and for a change whose direction is said
    in words (:func:`change_words`). A suppressed display (``<5``, ``[c]``) is unchanged.
    """
    if display[:1] in (MINUS, "-", "+") and display[1:2].isdigit():
        return display[1:]
    return display


def change_words(
    value,
    display: str,
    *,
    rise: str = "rose by",
    fall: str = "fell by",
    same: str = "did not change",
) -> tuple[str, str | None]:
    """``(verb, magnitude)`` for a change: the direction in words, the size without a sign.

    ``(-1.83, "−1.83")`` -> ``("fell by", "1.83")``; ``(0.4, "+0.40")`` -> ``("rose by",
    "0.40")``; a value that prints as zero -> ``("did not change", None)``; an unknown
    (suppressed or missing) value -> ``("changed by", display)`` so no direction is implied.
    """
    if value is None or isinstance(value, bool | str):
        return "changed by", display
    magnitude = unsigned(display)
    if not any(ch.isdigit() and ch != "0" for ch in magnitude):
        return same, None
    return (rise if value > 0 else fall), magnitude


def p_value_phrase(display: str) -> tuple[str, str]:
    """``(relation, number)`` for a p-value in prose: ``"<0.001"`` -> ``("<", "0.001")``,
    ``"0.042"`` -> ``("=", "0.042")``; printed as ``p < 0.001``, ``p = 0.042``."""
    if display[:1] in ("<", ">") and display[1:2].isdigit():
        return display[0], display[1:]
    return "=", display
