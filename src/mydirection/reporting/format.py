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
