"""Plain-English labels for registry numbers: the report never shows a registry key.

A rule labels its numbers itself (:class:`mydirection.reporting.numbers.Number`); the few
numbers written without one (the rule harness's own accounting) get a label here. Kept apart
from :mod:`mydirection.reporting.labels` (covariate names, used by the analysis stages) so
that a new label reruns only the registry and the report.
"""

from __future__ import annotations

import re

from mydirection.reporting import labels

# Labels of registry numbers whose rule wrote none (keys from the rule harness's own
# accounting); :func:`number_label` falls back to these, then to a reading of the key.
NUMBER_LABELS = {
    "clean.n_people": "People in the cleaned extracts",
    "clean.rows_excluded": "Rows excluded by cleaning",
    "clean.rows_kept": "Rows kept by cleaning",
    "clean.rows_received": "Rows received in the raw extracts",
}

_WORDS = {
    "n": "number of",
    "pct": "percentage",
    "pp": "(percentage points)",
    "ci": "confidence interval",
    "low": "lower limit",
    "high": "upper limit",
    "p": "p-value",
    "sd": "standard deviation",
    "smd": "standardised mean difference",
    "mde": "minimum detectable effect",
    "did": "difference-in-differences",
    "rr": "risk ratio",
    "abs": "absolute",
    "max": "largest",
    "min": "smallest",
    "ipw": "inverse probability weighting",
    "ps": "propensity score",
    "ogrs3": "OGRS3",
    "km": "Kaplan-Meier",
    "evalue": "E-value",
    "spec": "specification",
}


# Units spelled out.
UNITS = {"df": "degrees of freedom"}

# Identifiers that stage texts use, in words (covariate names come from labels.VARIABLES).
TOKENS = {
    "logit_ps": "the logit of the propensity score",
    "not_available": "not available",
    "id_normalised": "identifiers normalised",
    "code_normalised": "codes normalised",
    "date_format": "dates reformatted",
}
IDENTIFIER = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def readable_text(text: str) -> str:
    """Text with each ``snake_case`` identifier in words: a covariate's readable name
    (``n_previous_offences`` -> ``Previous proven offences``), a known token, else the
    identifier with spaces (``community_order`` -> ``community order``)."""

    def words(m: re.Match) -> str:
        token = m.group(0)
        if token in TOKENS:
            return TOKENS[token]
        if token in labels.VARIABLES:
            name = labels.VARIABLES[token]
            if m.start() and name[1:2].islower():  # mid-sentence: "previous proven offences"
                name = name[0].lower() + name[1:]
            return name
        return token.replace("_", " ")

    return IDENTIFIER.sub(words, text)


def humanise_key(key: str) -> str:
    """A readable label from a registry key's last part (``n_excluded_followup`` ->
    ``Number of excluded followup``): the fallback of :func:`number_label`."""
    last = key.rsplit(".", 1)[-1]
    words = [_WORDS.get(w, w) for w in last.split("_") if w]
    out = " ".join(words).strip() or key.replace(".", " ")
    return out[:1].upper() + out[1:]


def number_label(key: str, label: str | None = None) -> str:
    """The plain-English label of a registry number: the rule's own, else
    :data:`NUMBER_LABELS`, else :func:`humanise_key` (never the dotted key)."""
    if label and label.strip() and label.strip() != key:
        return label
    return NUMBER_LABELS.get(key) or humanise_key(key)


__all__ = ["NUMBER_LABELS", "UNITS", "humanise_key", "number_label", "readable_text"]
