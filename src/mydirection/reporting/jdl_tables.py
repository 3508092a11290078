"""The Justice Data Lab's tables in the report, from registry numbers only: subgroups, the
profile of participants not included, standardised differences beside the Love plot and the
attrition continued through matching. A mixin of :class:`mydirection.reporting.render.Report`
(it uses the report's ``n``, ``regtext`` and ``numbers``)."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from mydirection.reporting import labels

_MD_SPECIAL = {
    "[": "&#91;",
    "]": "&#93;",
    "*": "&#42;",
    "_": "&#95;",
    "`": "&#96;",
    "\\": "&#92;",
    "$": "&#36;",
    "@": "&#64;",
    "~": "&#126;",
    "^": "&#94;",
    "#": "&#35;",
    "|": "&#124;",
}


def text(value) -> Markup:
    """Plain text made safe for Markdown-with-raw-HTML (no markup, no citation, no math)."""
    return Markup("".join(_MD_SPECIAL.get(ch) or str(escape(ch)) for ch in str(value)))


#: The profile's variables in the order a JDL report lists them.
PROFILE_VARIABLES = ("sex", "age_band", "ethnicity")


def _profile_order(key: str) -> tuple:
    """Variables in :data:`PROFILE_VARIABLES` order; age bands from the youngest; a level
    that was not recorded last."""
    variable, level = key.split(".")[2:4]
    rank = PROFILE_VARIABLES.index(variable) if variable in PROFILE_VARIABLES else 99
    if level == "not_recorded":
        return rank, 2, 0, level
    if variable == "age_band":
        lower = -1 if level.startswith("under") else int(re.match(r"\d+", level).group())
        return rank, 0, lower, level
    return rank, 1, 0, level


class JdlTables:
    """The report's JDL tables (see the module docstring)."""

    numbers: dict

    def subgroup_table(self) -> Markup:
        """One row per subgroup level (``subgroups.<variable>.<level>.<measure>`` keys)."""
        levels: dict[tuple[str, str], dict[str, str]] = {}
        for key in sorted(self.numbers):
            parts = key.split(".")
            if len(parts) == 4 and parts[0] == "subgroups":
                levels.setdefault((parts[1], parts[2]), {})[parts[3]] = key
        if not levels:
            return Markup("")
        rows = []
        for (variable, level), m in levels.items():
            anchor = next(iter(m.values()))

            def cell(measure, m=m):
                return self.n(m[measure]) if measure in m else Markup("\u2014")

            ci = (
                Markup(f"{cell('rate_difference_ci_low')} to {cell('rate_difference_ci_high')}")
                if "rate_difference_ci_low" in m
                else Markup("\u2014")
            )
            rows.append(
                f"<tr><td>{self.regtext(anchor, labels.variable(variable))}</td>"
                f"<td>{self.regtext(anchor, labels.level(variable, level))}</td>"
                f"<td>{cell('n_treated')}</td><td>{cell('n_comparison')}</td>"
                f"<td>{cell('rate_difference')}</td><td>{ci}</td>"
                f"<td>{cell('rate_difference_p')}</td></tr>"
            )
        return Markup(
            '<table class="subgroups jdl">\n<thead><tr><th>Subgroup</th><th>Level</th>'
            "<th>My Direction</th><th>Comparison</th><th>Difference in rate</th>"
            "<th>Confidence interval</th><th>p-value</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows)
            + "\n</tbody>\n</table>\n"
        )

    def excluded_profile_table(self) -> Markup:
        """Participants not included, by variable and level (``cohort.excluded_profile.*``),
        as a Justice Data Lab report shows them; small counts as the registry shows them."""
        prefix = "cohort.excluded_profile."
        keys = [k for k in self.numbers if k.startswith(prefix) and k.count(".") == 3]
        if not keys:
            return Markup("")
        rows = []
        for key in sorted(keys, key=_profile_order):
            variable, level = key[len(prefix) :].split(".", 1)
            rows.append(
                f"<tr><td>{self.regtext(key, labels.variable(variable))}</td>"
                f"<td>{self.regtext(key, labels.level(variable, level))}</td>"
                f"<td>{self.n(key)}</td></tr>"
            )
        total = self.n(prefix + "n")
        return Markup(
            '<table class="profile jdl">\n<thead><tr><th>Characteristic</th><th>Level</th>'
            "<th>Participants not included</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows)
            + f"\n<tr><td>All</td><td></td><td>{total}</td></tr>\n</tbody>\n</table>\n"
        )

    def balance_table(self) -> Markup:
        """The numeric standardised differences beside the Love plot: one row per covariate
        level (``matching.balance.<level>.smd_before/smd_after/var_ratio_after``), a level
        whose difference after matching exceeds the plan's threshold marked."""
        prefix = "matching.balance."
        levels: dict[str, dict[str, str]] = {}
        for key in sorted(self.numbers):
            if key.startswith(prefix):
                level, _, measure = key[len(prefix) :].rpartition(".")
                if level:
                    levels.setdefault(level, {})[measure] = key
        if not levels:
            return Markup("")
        threshold = self.numbers.get("config.matching.smd_threshold", {}).get("config_value")

        def cell(m, measure):
            return self.n(m[measure]) if measure in m else Markup("\u2014")

        rows = []
        for m in levels.values():
            anchor = m.get("smd_after") or next(iter(m.values()))
            name = re.sub(
                r": standardised mean difference after matching$",
                "",
                self.numbers[anchor].get("label") or "",
            )
            after = self.numbers.get(m.get("smd_after", ""), {}).get("value")
            over = (
                isinstance(after, int | float)
                and isinstance(threshold, int | float)
                and abs(after) > threshold
            )
            judged = isinstance(after, int | float) and isinstance(threshold, int | float)
            flag = ("above the threshold" if over else "within") if judged else ""
            tr = '<tr class="imbalanced">' if over else "<tr>"
            rows.append(
                f"{tr}"
                f"<th>{self.regtext(anchor, name)}</th>"
                f"<td>{cell(m, 'smd_before')}</td><td>{cell(m, 'smd_after')}</td>"
                f"<td>{cell(m, 'var_ratio_after')}</td><td>{text(flag)}</td></tr>"
            )
        return Markup(
            '<table class="balance jdl">\n<thead><tr><th>Covariate</th>'
            "<th>Standardised difference before matching</th>"
            "<th>Standardised difference after matching</th>"
            "<th>Variance ratio after matching</th><th>Balance</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows)
            + "\n</tbody>\n</table>\n"
        )

    def attrition_steps(self) -> list[str]:
        """The cohort's attrition steps in order, read from the registry's relations
        (``...<step>.treated.remaining = ...<next>.treated.remaining + ...<next>.treated.lost``)."""
        prefix, group = "cohort.attrition.", ".treated.remaining"
        after: dict[str, str] = {}
        for rel in self.relations:
            total, parts = rel[0], rel[1]
            if not (total.startswith(prefix) and total.endswith(group)):
                continue
            nxt = [p for p in parts if p.startswith(prefix) and p.endswith(group)]
            if len(nxt) == 1:
                after[total[len(prefix) : -len(group)]] = nxt[0][len(prefix) : -len(group)]
        starts = set(after) - set(after.values())
        if len(starts) != 1:
            return []
        steps = [starts.pop()]
        while steps[-1] in after and len(steps) <= len(after):
            steps.append(after[steps[-1]])
        return steps

    def attrition_table(self) -> Markup:
        """The attrition chevron as a table, continued through matching and follow-up:
        people remaining and lost at each step, participants and comparators."""
        steps = self.attrition_steps()
        if not steps:
            return Markup("")
        base = "cohort.attrition."

        def cell(key):
            return self.n(key) if key in self.numbers else Markup("\u2014")

        rows = []
        for step in steps:
            anchor = f"{base}{step}.treated.remaining"
            label = self.numbers.get(anchor, {}).get("label") or labels.humanise_key(step)
            label = re.sub(r":\s*treated, remaining$", "", label)
            rows.append(
                f"<tr><th>{self.regtext(anchor, label)}</th>"
                f"<td>{cell(anchor)}</td><td>{cell(f'{base}{step}.treated.lost')}</td>"
                f"<td>{cell(f'{base}{step}.comparator.remaining')}</td>"
                f"<td>{cell(f'{base}{step}.comparator.lost')}</td></tr>"
            )
        later = [
            (
                "matching.n_treated_matched",
                "Matched (propensity score)",
                "matching.n_treated_unmatched",
                "matching.n_comparators_matched",
            ),
            (
                "reoffending.n_treated",
                "Analysed: matched, with a complete follow-up",
                None,
                "reoffending.n_comparison",
            ),
        ]
        for treated, label, lost, comparators in later:
            if treated not in self.numbers:
                continue
            rows.append(
                f'<tr class="after-cohort"><th>{self.regtext(treated, label)}</th>'
                f"<td>{cell(treated)}</td><td>{cell(lost) if lost else cell('')}</td>"
                f"<td>{cell(comparators)}</td><td>\u2014</td></tr>"
            )
        return Markup(
            '<table class="attrition jdl">\n<thead><tr><th>Step</th>'
            "<th>Participants remaining</th><th>Participants lost</th>"
            "<th>Comparators remaining</th><th>Comparators lost</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows)
            + "\n</tbody>\n</table>\n"
        )
