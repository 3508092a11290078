"""The cohort's attrition figure: a flow (chevron) of the eligibility steps of
:mod:`mydirection.cohort`, per group, showing only the counts the registry publishes."""

from __future__ import annotations

import pandas as pd

from mydirection.reporting.numbers import Numbers


def plot_attrition(attrition: pd.DataFrame, path, numbers: Numbers, threshold: int) -> None:
    """A flow (chevron) figure: each step with people remaining and lost, per group.

    The counts shown are those the registry publishes: disclosure control
    (:func:`mydirection.reporting.disclosure.display`) is applied to ``numbers`` with their
    additive relations, so no suppressed count can be recovered by subtraction.
    """
    import textwrap

    from matplotlib.patches import FancyBboxPatch

    from mydirection.reporting import disclosure
    from mydirection.reporting.figures import COLOURS, figure

    entries = {k: v.as_dict() for k, v in numbers.items()}
    hidden = disclosure.display(entries, numbers.relations, threshold)

    def shown(key: str) -> str:
        return hidden.get(key) or disclosure.shown_count(entries[key]["value"], threshold)

    steps = attrition.drop_duplicates("step").sort_values("step")
    n = len(steps)
    with figure(path, figsize=(11, 0.95 * n + 1.2)) as (_, ax):
        ax.set_xlim(0, 11)
        ax.set_ylim(-0.4, n + 0.2)
        ax.axis("off")
        ax.set_title("Cohort attrition: people remaining after each step (lost and why)")
        for x, head in ((2.6, "Step"), (6.4, "Participants"), (9.2, "Comparators")):
            ax.text(x, n - 0.15, head, ha="center", fontsize=10, weight="bold")
        for i, step in enumerate(steps.itertuples()):
            y = n - 1 - i
            lost_any = (
                i > 0
                and int(
                    attrition.loc[
                        (attrition["step"] == step.step) & (attrition["group"] == "all"), "n_lost"
                    ].iloc[0]
                )
                > 0
            )
            desc = "\n".join(textwrap.wrap(str(step.description), 60))
            ax.add_patch(
                FancyBboxPatch(
                    (0.1, y + 0.12),
                    5.0,
                    0.62,
                    boxstyle="round,pad=0.02",
                    fc="#eef2f7",
                    ec="#5b6b82",
                )
            )
            ax.text(0.25, y + (0.52 if lost_any else 0.43), desc, va="center", fontsize=7.5)
            if step.reason and lost_any:
                ax.text(0.25, y + 0.22, "lost: " + textwrap.shorten(str(step.reason), 85),
                        va="center", fontsize=6.5, color=COLOURS["highlight"])  # fmt: skip
            for x, group in ((6.4, "treated"), (9.2, "comparator")):
                colour = COLOURS[group]
                key = f"cohort.attrition.{step.rule}.{group}"
                ax.add_patch(
                    FancyBboxPatch(
                        (x - 1.1, y + 0.3),
                        2.2,
                        0.44,
                        boxstyle="round,pad=0.02",
                        fc="white",
                        ec=colour,
                        lw=1.5,
                    )  # fmt: skip
                )
                ax.text(x, y + 0.52, shown(key + ".remaining"), ha="center", va="center",
                        fontsize=9, color=colour, weight="bold")  # fmt: skip
                if i > 0:
                    ax.annotate("", xy=(x, y + 0.76), xytext=(x, y + 1.28),
                                arrowprops={"arrowstyle": "->", "color": colour, "lw": 1})  # fmt: skip
                    if entries[key + ".lost"]["value"]:
                        ax.text(x + 0.12, y + 1.02, f"{shown(key + '.lost')} lost", ha="left",
                                va="center", fontsize=7.5, color=COLOURS["highlight"])  # fmt: skip
