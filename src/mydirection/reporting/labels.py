"""Readable names for covariates, their levels and subgroups, for figures and tables
("Index offence: possession of weapons", not ``index_offence_group_possession_of_weapons``)."""

from __future__ import annotations

VARIABLES = {
    "age": "Age",
    "sex": "Sex",
    "ethnicity": "Ethnicity",
    "sentence_type": "Sentence type",
    "index_offence_group": "Index offence",
    "rosh": "Risk of serious harm",
    "ogrs3_1yr": "OGRS3 score (one year)",
    "ogrs3_2yr": "OGRS3 score (two years)",
    "ogrs3_missing": "No OGRS3 score before the index date",
    "ogrs3_band": "OGRS3 band",
    "assessment_age_days": "Days since the last assessment",
    "need_accommodation": "Need: accommodation",
    "need_ete": "Need: education, training and employment",
    "need_finance": "Need: finance",
    "need_relationships": "Need: relationships",
    "need_lifestyle": "Need: lifestyle",
    "need_drugs": "Need: drugs",
    "need_alcohol": "Need: alcohol",
    "need_thinking": "Need: thinking and behaviour",
    "need_attitudes": "Need: attitudes",
    "needs_missing": "A need not recorded",
    "n_previous_offences": "Previous proven offences",
    "n_previous_custody": "Previous custodial sentences",
    "age_first_offence": "Age at first proven offence",
    "offences_last_12m": "Offences in the year before the index date",
    "copas_rate": "Rate of offending (Copas)",
    "pilot_office": "Supervised at a pilot office",
    "office": "Office",
}

LEVELS = {
    "rosh": {"low": "low", "medium": "medium", "high": "high", "very_high": "very high"},
    "ogrs3_band": {"very_high": "very high"},
}


def variable(name: str) -> str:
    """A covariate's readable name."""
    return VARIABLES.get(name, name.replace("_", " ").capitalize())


def level(var: str, value) -> str:
    """A level's readable name (``community_order`` -> ``community order``)."""
    text = str(value)
    return LEVELS.get(var, {}).get(text, text.replace("_", " "))


def covariate(var: str, lvl=None) -> str:
    """``Index offence: possession of weapons`` for a level, ``Age`` for a continuous one."""
    if lvl is None or (isinstance(lvl, float) and lvl != lvl):
        return variable(var)
    return f"{variable(var)}: {level(var, lvl)}"


__all__ = ["covariate", "level", "variable"]
