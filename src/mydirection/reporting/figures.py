"""One figure helper for every stage: matplotlib set-up, a colour-blind-safe palette,
deterministic PNG bytes, and a placeholder for a figure withheld by disclosure control.

    with figure(path, figsize=(7, 4)) as (fig, ax):
        ax.plot(...)

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies); contrast never rests on red against green alone.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

#: Okabe & Ito (2008) colour-blind-safe palette, by role.
COLOURS = {
    "treated": "#0072B2",  # blue
    "comparator": "#E69F00",  # orange
    "highlight": "#D55E00",  # vermillion
    "good": "#009E73",  # bluish green
    "light": "#56B4E9",  # sky blue
    "accent": "#CC79A7",  # reddish purple
    "neutral": "#555555",
    "faint": "#BBBBBB",
}
DPI = 150


def pyplot():
    """matplotlib.pyplot on the Agg backend with the project's defaults."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "svg.hashsalt": "mydirection",
        }
    )
    return plt


def save(fig, path) -> None:
    """Write ``fig`` as PNG (no software/date metadata, so the bytes are reproducible)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Software": None}, bbox_inches="tight")
    pyplot().close(fig)


@contextmanager
def figure(path, *args, **kwargs):
    """``plt.subplots(*args, **kwargs)`` as a context: laid out and saved to ``path`` on exit."""
    plt = pyplot()
    fig, axes = plt.subplots(*args, **kwargs)
    try:
        yield fig, axes
        fig.tight_layout()
        save(fig, path)
    finally:
        plt.close(fig)


def withheld(path, reason: str) -> None:
    """A placeholder image for a figure that disclosure control does not allow to publish."""
    with figure(path, figsize=(6, 1.2)) as (_, ax):
        ax.axis("off")
        ax.text(0.5, 0.5, reason, ha="center", va="center", wrap=True, color=COLOURS["neutral"])


__all__ = ["COLOURS", "figure", "pyplot", "save", "withheld"]
