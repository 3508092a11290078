"""The covariate design: checking the treatment column and expanding covariates to a
float matrix (categoricals as indicators, levels sorted as text)."""

from __future__ import annotations

import numpy as np
import pandas as pd

_CHUNK_ROWS = 32_768  # rows per block: temporaries stay in cache (memory-bound machines)


def _examples(mask: np.ndarray) -> str:
    """Up to five example row numbers (0-based positions) where ``mask`` is True."""
    rows = np.flatnonzero(mask)[:5]
    return ", ".join(str(int(r)) for r in rows)


def treatment_indicator(data: pd.DataFrame, treatment: str) -> np.ndarray:
    """The treatment column as a boolean array; it must be bool or 0/1 without gaps."""
    if treatment not in data.columns:
        raise ValueError(f"column {treatment}: not found; name the treatment column")
    col = data[treatment]
    missing = col.isna().to_numpy()
    if missing.any():
        raise ValueError(
            f"column {treatment}: {int(missing.sum())} rows missing (e.g. rows "
            f"{_examples(missing)}); every unit must be treated (1/True) or control (0/False)"
        )
    values = col.to_numpy()
    if values.dtype == bool:
        return values.astype(bool)
    try:
        numeric = values.astype(float)
    except (TypeError, ValueError):
        numeric = np.full(len(values), np.nan)
    bad = ~np.isin(numeric, (0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"column {treatment}: {int(bad.sum())} rows are neither 0/1 nor True/False "
            f"(e.g. rows {_examples(bad)}); recode the treatment as boolean"
        )
    return numeric == 1.0


def categorical_columns(data: pd.DataFrame, covariates, categorical=None) -> list[str]:
    """Covariates treated as categorical: those listed plus every non-numeric, non-bool one."""
    listed = set(categorical or ())
    out = []
    for c in covariates:
        dtype = data[c].dtype
        if c in listed or not (
            pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        ):
            out.append(c)
    return out


def _level_codes(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes into the sorted text levels of a categorical column (missing -> "(missing)")."""
    codes, uniques = pd.factorize(col, sort=False)
    text = [str(u) for u in uniques]
    if (codes < 0).any():
        text.append("(missing)")
        codes = np.where(codes < 0, len(text) - 1, codes)
    levels = sorted(set(text))
    remap = np.array([levels.index(v) for v in text], dtype=np.int64)
    return (remap[codes] if len(text) else codes), levels


def _expand(data, covariates, categorical, drop_first):
    """Covariate matrix (rows x columns, float64), column names and (variable, level)."""
    covariates = list(covariates)
    absent = [c for c in covariates if c not in data.columns]
    if absent:
        raise ValueError(f"column {absent[0]}: not found; covariates must be columns of the data")
    cats = set(categorical_columns(data, covariates, categorical))
    parts = []  # (name, variable, level, values or (codes, k))
    for c in covariates:
        col = data[c]
        if c in cats:
            codes, levels = _level_codes(col)
            for k, level in enumerate(levels):
                if drop_first and k == 0:
                    continue
                parts.append((f"{c}_{level}", c, level, (codes, k)))
        else:
            missing = col.isna().to_numpy()
            if missing.any():
                raise ValueError(
                    f"column {c}: {int(missing.sum())} rows missing (e.g. rows "
                    f"{_examples(missing)}); impute them or add a missingness indicator "
                    "before matching"
                )
            parts.append((c, c, None, col.to_numpy(dtype=float)))
    X = np.empty((len(data), len(parts)))
    for j, (_, _, _, values) in enumerate(parts):
        if isinstance(values, tuple):
            np.equal(values[0], values[1], out=X[:, j], casting="unsafe")
        else:
            X[:, j] = values
    names = [p[0] for p in parts]
    return X, names, {p[0]: (p[1], p[2]) for p in parts}


def expand_covariates(
    data: pd.DataFrame, covariates, categorical=None, *, drop_first: bool = False
) -> pd.DataFrame:
    """Covariates as a float frame: numeric/bool as is, categoricals as 0/1 indicators.

    Indicator columns are named ``<covariate>_<level>``, levels sorted as text, a missing
    categorical value becoming the level ``(missing)``. With ``drop_first`` the first level
    is left out (the reference category of the propensity model). Missing numeric values
    are an error: impute them or add a missingness indicator upstream.
    The frame's ``attrs["variables"]`` maps each column to ``(covariate, level)``.
    """
    X, names, variables = _expand(data, covariates, categorical, drop_first)
    out = pd.DataFrame(X, columns=names, index=data.index)
    out.attrs["variables"] = variables
    return out


def _design(data, covariates, categorical) -> tuple[np.ndarray, list[str]]:
    """Intercept plus indicator-expanded covariates (first level of each categorical dropped)."""
    X, names, _ = _expand(data, covariates, categorical, drop_first=True)
    design = np.empty((X.shape[0], X.shape[1] + 1))
    design[:, 0] = 1.0
    design[:, 1:] = X
    return design, ["const", *names]


def _first_levels(names, variables) -> np.ndarray:
    """Mask of the reference (first, sorted) level column of each categorical variable."""
    seen = set()
    mask = np.zeros(len(names), dtype=bool)
    for j, name in enumerate(names):
        variable, level = variables[name]
        if level is not None and variable not in seen:
            seen.add(variable)
            mask[j] = True
    return mask


def term_matrix(X: np.ndarray, names: list[str], terms) -> np.ndarray:
    """Extra propensity-model columns for ``terms`` over the expanded covariate matrix.

    A term is ``"<column>^2"`` (the square) or ``"<column>*<column>"`` (the product), where a
    column is an expanded covariate name (``age``, ``sex_male``). Columns are centred at
    their mean first, so the extra terms are nearly orthogonal to the main effects.
    """
    index = {name: j for j, name in enumerate(names)}
    out = np.empty((X.shape[0], len(terms)))
    for k, term in enumerate(terms):
        parts = term[:-2].split("*") * 2 if term.endswith("^2") else term.split("*")
        unknown = [p for p in parts if p not in index]
        if len(parts) != 2 or unknown:
            raise ValueError(
                f"propensity term {term!r}: use 'column^2' or 'column*column' with expanded "
                f"covariate names (unknown: {', '.join(unknown) or term})"
            )
        a, b = (X[:, index[p]] - X[:, index[p]].mean() for p in parts)
        out[:, k] = a * b
    return out
