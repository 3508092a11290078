"""Filling the report template from the registry and rendering it to one HTML file.

The report source ``reports/evaluation.qmd`` is a Jinja2 template. It runs no code: every
number comes from ``results/registry.json`` through :meth:`Report.n`, which prints it as::

    <a class="numlink" href="#prov-KEY"><span class="num" data-key="KEY"
       title="rule: RULE">DISPLAY</span></a>

and the provenance appendix (:meth:`Report.provenance`) has a row ``id="prov-KEY"`` for
every key. A section is rendered only when its stage has reported (:meth:`Report.has`);
inside a rendered section a key that no rule wrote stops the build with
:class:`ReportKeyError` naming the key.

The filled Markdown is rendered by ``quarto render`` when Quarto is on the PATH, else by
Pandoc (``pypandoc-binary``) with ``--standalone --embed-resources``: one self-contained,
offline-readable HTML file, in a scratch directory of its own (:func:`render`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

#: Key prefixes that belong to each report section (in report order).
SECTION_PREFIXES: dict[str, tuple[str, ...]] = {
    "summary": ("summary",),
    "cohort": ("synthetic", "clean", "cleaning", "cohort"),
    "matching": ("matching", "balance", "propensity"),
    "reoffending": (
        "reoffending",
        "outcomes",
        "effects",
        "survival",
        "panel",
        "event_study",
        "subgroups",
    ),
    "fidelity": ("fidelity",),
    "trust": ("power", "sensitivity", "simulation", "placebo", "specification"),
}

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


class ReportKeyError(KeyError):
    """A rendered section refers to a registry key that no rule reported."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def text(value) -> Markup:
    """Plain text made safe for Markdown-with-raw-HTML (no markup, no citation, no math)."""
    return Markup("".join(_MD_SPECIAL.get(ch) or str(escape(ch)) for ch in str(value)))


def figure_filename(key: str, path: str) -> str:
    """The name a figure gets next to the rendered source (stable, from its key)."""
    return "figures/" + re.sub(r"[^A-Za-z0-9_.-]", "_", key) + Path(path).suffix


class Report:
    """Template helpers over a loaded registry; records which keys a section has shown."""

    def __init__(self, registry: Mapping):
        self.numbers: dict = dict(registry.get("numbers", {}))
        self.figures: dict = dict(registry.get("figures", {}))
        self.threshold = registry.get("threshold", 5)
        self.config_hash = registry.get("config_hash", "")
        self.used: set[str] = set()
        self.section_name = "(preamble)"
        rule_prefixes: dict[str, set] = {}
        for key, e in self.numbers.items():
            rule_prefixes.setdefault(e["rule"], set()).add(key.split(".", 1)[0])
        self._rule_prefixes = rule_prefixes

    # -- looking things up
    def section(self, name: str) -> str:
        """Mark the start of a section (used in error messages)."""
        self.section_name = name
        return ""

    def has(self, *prefixes: str) -> bool:
        """Whether any number or figure key starts with one of ``prefixes`` + ``"."``."""
        return any(k.split(".", 1)[0] in prefixes for k in [*self.numbers, *self.figures])

    def has_key(self, *keys: str) -> bool:
        return all(k in self.numbers or k in self.figures for k in keys)

    def entry(self, key: str) -> dict:
        if key not in self.numbers:
            prefix = key.split(".", 1)[0]
            near = sorted(k for k in self.numbers if k.startswith(prefix + "."))
            raise ReportKeyError(
                f"report section {self.section_name!r} uses registry key {key!r}, which no rule "
                f"reported (keys under {prefix!r}: {', '.join(near[:12]) or 'none'}); write it "
                "in the stage's numbers file or change reports/evaluation.qmd"
            )
        return self.numbers[key]

    def value(self, key: str):
        """The raw value (None when suppressed), for conditions in the template."""
        return self.entry(key).get("value")

    def suppressed(self, key: str) -> bool:
        return bool(self.entry(key).get("suppressed"))

    def label(self, key: str) -> Markup:
        """The number's label, or its key set as an identifier when it has none.

        A label is registry text written by the rule (it may contain digits, e.g. a
        confidence level), so it is printed inside ``<span class="regtext" data-key=KEY>``.
        """
        e = self.entry(key) if key in self.numbers else self.figures[key]
        if e.get("label"):
            return self.regtext(key, e["label"])
        return Markup(f'<code class="ident">{text(key)}</code>')

    def regtext(self, key: str, value: str) -> Markup:
        """Text taken from the registry entry ``key`` (label, unit, caption), marked as such."""
        e = self.numbers.get(key) or self.figures[key]
        return Markup(
            f'<span class="regtext" data-key="{escape(key)}" title="rule: {escape(e["rule"])}">'
            f"{text(value)}</span>"
        )

    # -- printing numbers and figures
    def n(self, key: str) -> Markup:
        """A registry number as a span linking to its provenance row."""
        e = self.entry(key)
        self.used.add(key)
        cls = "num suppressed" if e.get("suppressed") else "num"
        if e.get("kind") == "text":
            cls += " text"
        return Markup(
            f'<a class="numlink" href="#prov-{escape(key)}"><span class="{cls}" '
            f'data-key="{escape(key)}" title="rule: {escape(e["rule"])}">'
            f"{text(e['display'])}</span></a>"
        )

    def opt(self, key: str, missing: str = "\u2014") -> Markup:
        """Like :meth:`n`, but an em dash when the key is absent (optional table cells)."""
        return self.n(key) if key in self.numbers else Markup(missing)

    def fig(self, key: str) -> Markup:
        """A figure with its caption and a link to its provenance row."""
        if key not in self.figures:
            raise ReportKeyError(
                f"report section {self.section_name!r} uses figure {key!r}, which no rule "
                f"reported (figures: {', '.join(sorted(self.figures)) or 'none'})"
            )
        f = self.figures[key]
        self.used.add(key)
        src = figure_filename(key, f["path"])
        return Markup(
            f'<figure id="figure-{escape(key)}">\n'
            f'<img src="{escape(src)}" alt="{escape(f.get("caption") or key)}" />\n'
            f"<figcaption>{self.regtext(key, f.get('caption', ''))} "
            f'<a class="provlink" href="#prov-{escape(key)}" data-key="{escape(key)}" '
            f'title="rule: {escape(f["rule"])}">(source: rule {text(f["rule"])})</a>'
            "</figcaption>\n</figure>\n"
        )

    def _in_section(self, key: str, prefixes: Iterable[str], rule: str | None = None) -> bool:
        prefixes = tuple(prefixes)
        if key.split(".", 1)[0] in prefixes:
            return True
        if rule is not None:
            own = self._rule_prefixes.get(rule, set())
            if own:
                return sorted(own)[0] in prefixes
            return rule.startswith(prefixes)
        return False

    def rest(self, *prefixes: str, heading: str = "Other numbers from this stage") -> Markup:
        """A table of this section's numbers not yet shown in its prose."""
        keys = [
            k for k in sorted(self.numbers) if k not in self.used and self._in_section(k, prefixes)
        ]
        if not keys:
            return Markup("")
        rows = [
            f"<tr><td>{self.label(k)}</td><td>{self.n(k)}</td>"
            f"<td>{self.regtext(k, self.numbers[k].get('unit', ''))}</td></tr>"
            for k in keys
        ]
        return Markup(
            f'<p class="rest-heading">{text(heading)}</p>\n<table class="rest">\n'
            "<thead><tr><th>Measure</th><th>Value</th><th>Unit</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows)
            + "\n</tbody>\n</table>\n"
        )

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
                f"<tr><td>{self.regtext(anchor, variable.replace('_', ' '))}</td>"
                f"<td>{self.regtext(anchor, level.replace('_', ' '))}</td>"
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

    def rest_figures(self, *prefixes: str) -> Markup:
        """This section's figures not yet shown."""
        keys = [
            k
            for k in sorted(self.figures)
            if k not in self.used and self._in_section(k, prefixes, self.figures[k]["rule"])
        ]
        return Markup("\n".join(self.fig(k) for k in keys))

    def leftover(self) -> tuple[list[str], list[str]]:
        """Numbers and figures no section has shown (rendered under "Other results")."""
        skip = ("config.", "report.")
        nums = [k for k in sorted(self.numbers) if k not in self.used and not k.startswith(skip)]
        figs = [k for k in sorted(self.figures) if k not in self.used]
        return nums, figs

    def rest_all(self) -> Markup:
        nums, figs = self.leftover()
        out = Markup("")
        if nums:
            prefixes = sorted({k.split(".", 1)[0] for k in nums})
            out += self.rest(*prefixes, heading="Numbers reported by the pipeline")
        out += Markup("\n".join(self.fig(k) for k in figs))
        return out

    def any_suppressed(self) -> bool:
        return any(e.get("suppressed") for e in self.numbers.values())

    # -- appendices
    def methods(self) -> Markup:
        """The analysis plan as run: every setting, its value (a registry span), its users."""
        keys = sorted(k for k in self.numbers if k.startswith("config."))
        groups: dict[str, list[str]] = {}
        for k in keys:
            groups.setdefault(k.split(".")[1], []).append(k)
        parts = []
        for group, ks in groups.items():
            rows = []
            for k in ks:
                e = self.numbers[k]
                users = ", ".join(e.get("used_by", [])) or "\u2014"
                rows.append(
                    f'<tr title="{escape(e.get("description", ""))}"><td><code class="ident">'
                    f"{text(e['setting'])}</code></td><td>{self.n(k)}</td><td>{text(users)}</td></tr>"
                )
            parts.append(
                f'<table class="methods" data-section="{escape(group)}">\n<thead><tr><th>Setting</th>'
                "<th>Value</th><th>Used by rules</th></tr></thead>\n<tbody>\n"
                + "\n".join(rows)
                + "\n</tbody>\n</table>\n"
            )
        return Markup("\n".join(parts))

    def provenance(self) -> Markup:
        """One row per number and figure: key, value, rule, script@blob, inputs, config."""
        rows = []
        for key in sorted([*self.numbers, *self.figures]):
            e = self.numbers.get(key) or self.figures[key]
            is_fig = key in self.figures
            if is_fig:
                value = f"{e['path']} (sha256 {e['sha256'][:12]})"
            elif e.get("suppressed"):
                value = "suppressed"
            else:
                value = json.dumps(e.get("value"), ensure_ascii=False)
            blob = (e["script"].get("blob") or "unknown")[:10]
            inputs = (
                "<br />".join(
                    f"{text(p)} <code>{h[:12]}</code>"
                    for p, h in sorted(e.get("inputs", {}).items())
                )
                or "\u2014"
            )
            config = (
                "<br />".join(
                    f"{text(k)} = {text(json.dumps(v, ensure_ascii=False, sort_keys=True))}"
                    for k, v in sorted(e.get("config", {}).items())
                )
                or "\u2014"
            )
            rows.append(
                f'<tr id="prov-{escape(key)}"><td><code>{text(key)}</code></td>'
                f"<td>{text(value)}</td><td>{text(e.get('display', e.get('caption', '')))}</td>"
                f"<td>{text(e['rule'])}</td><td><code>{text(e['script']['path'])}@{blob}</code></td>"
                f"<td>{inputs}</td><td>{config}</td></tr>"
            )
        return Markup(
            '<table class="provenance">\n<thead><tr><th>Key</th><th>Value</th><th>Shown as</th>'
            "<th>Rule</th><th>Script@blob</th><th>Inputs (sha256)</th><th>Config</th></tr></thead>\n"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"
        )

    def stamp_table(self, stamp: Mapping) -> Markup:
        rows = [
            f"<tr><th>{text(k)}</th><td><code>{text(v)}</code></td></tr>"
            for k, v in stamp.get("build", {}).items()
        ]
        rows += [
            f"<tr><th>package {text(k)}</th><td><code>{text(v)}</code></td></tr>"
            for k, v in sorted(stamp.get("packages", {}).items())
        ]
        rows += [
            f"<tr><th>input {text(k)}</th><td><code>{text(v)}</code></td></tr>"
            for k, v in sorted(stamp.get("inputs", {}).items())
        ]
        return Markup(
            '<table class="stamp">\n<tbody>\n' + "\n".join(rows) + "\n</tbody>\n</table>\n"
        )


def source_inputs(registry: Mapping) -> dict[str, str]:
    """Checksums of the inputs the pipeline did not make (extracts, config), from the registry."""
    out = {}
    for e in [*registry.get("numbers", {}).values(), *registry.get("figures", {}).values()]:
        for p, h in e.get("inputs", {}).items():
            if not p.startswith("results/"):
                out[p] = h
    return dict(sorted(out.items()))


def package_versions(
    names: Iterable[str] = (
        "python",
        "snakemake",
        "pandas",
        "numpy",
        "scipy",
        "statsmodels",
        "linearmodels",
        "matplotlib",
        "pyarrow",
        "jinja2",
        "pypandoc-binary",
        "mydirection",
    ),
) -> dict[str, str]:
    import platform
    from importlib import metadata

    out = {}
    for name in names:
        if name == "python":
            out[name] = platform.python_version()
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state(cwd=".") -> tuple[str, bool | None]:
    """(commit, dirty) of the working tree; ("unknown", None) outside a git repository."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown", None


def registry_figure_paths(registry_path, declared: Iterable[str] = ()) -> list[str]:
    """Every figure file the registry lists, plus ``declared`` (the FIGURES list)."""
    figures = json.loads(Path(registry_path).read_text()).get("figures", {})
    return sorted({f["path"] for f in figures.values()} | set(declared))


def fill_template(template_path, registry: Mapping, stamp: Mapping) -> str:
    """The report source filled from the registry (Markdown with raw HTML)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(template_path).parent)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        comment_start_string="<!--#",
        comment_end_string="#-->",
        trim_blocks=True,
        lstrip_blocks=True,
    )
    report = Report(registry)
    template = env.get_template(Path(template_path).name)
    return template.render(
        r=report, n=report.n, opt=report.opt, fig=report.fig, stamp=stamp, text=text
    )


def choose_engine(prefer: str = "auto") -> str:
    """``quarto`` when asked or found on the PATH (``auto``), else ``pandoc``."""
    if prefer == "pandoc":
        return "pandoc"
    if prefer == "quarto" or (prefer == "auto" and shutil.which("quarto")):
        return "quarto"
    return "pandoc"


def engine_version(engine: str) -> str:
    if engine == "quarto":
        out = subprocess.run(["quarto", "--version"], capture_output=True, text=True, check=True)
        return "quarto " + out.stdout.strip()
    import pypandoc

    return "pandoc " + pypandoc.get_pandoc_version()


def render(
    markdown: str,
    figures: Mapping[str, str],
    assets: Iterable,
    output,
    *,
    engine: str = "pandoc",
    workdir=None,
) -> None:
    """Render the filled source to one self-contained HTML file at ``output``.

    ``figures`` maps the names used in the source (:func:`figure_filename`) to files;
    ``assets`` (CSS, bibliography) are copied next to the source. Rendering happens in a
    fresh scratch directory (Quarto writes companion files next to its source); only the
    HTML leaves it.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    base = (Path(workdir) if workdir else output.parent).resolve()
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".render-", dir=base) as tmp:
        tmp = Path(tmp)
        for name, src in figures.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / name)
        for asset in assets:
            shutil.copyfile(asset, tmp / Path(asset).name)
        source = tmp / "evaluation.qmd"
        source.write_text(markdown)
        if engine == "quarto":
            subprocess.run(
                ["quarto", "render", source.name, "--to", "html", "--output", "evaluation.html"],
                cwd=tmp,
                check=True,
                capture_output=True,
            )
        else:
            import pypandoc

            pypandoc.convert_file(
                str(source),
                "html5",
                format="markdown",
                outputfile=str(tmp / "evaluation.html"),
                extra_args=[
                    "--standalone",
                    "--embed-resources",
                    "--section-divs",
                    "--toc",
                    "--toc-depth=2",
                    "--citeproc",
                    f"--resource-path={tmp}",
                    "--css=style.css",
                    "--metadata=link-citations:false",
                ],
                cworkdir=str(tmp),
            )
        shutil.copyfile(tmp / "evaluation.html", output)
