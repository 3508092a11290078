"""Filling the report template from the registry and rendering it to one HTML file.

The report source ``reports/evaluation.qmd`` is a Jinja2 template. It runs no code: every
number comes from ``results/registry.json`` through :meth:`Report.n`, which prints it as::

    <a class="numlink" href="#rule-RULE"><span class="num" data-key="KEY"
       title="LABEL (rule RULE)">DISPLAY</span></a>

and the provenance appendix (:meth:`Report.provenance`) has one entry ``id="rule-RULE"``
per rule: its library stage function, the git blob of each module it ran, its settings and
its inputs with the rule that made each (a link upstream). The full, number-by-number
provenance is the registry itself, copied beside the report as ``provenance.json``.
Figure captions name registry numbers as ``{key}``; each is printed as a linked number.
Words around numbers: :meth:`Report.size` prints a size without a sign (an MDE, an SD),
:meth:`Report.change` a change as "fell by 1.83" (never "fell by −1.83"), :meth:`Report.p` a
p-value as "p < 0.001" or "p = 0.042". The JDL tables (:meth:`Report.attrition_table`,
:meth:`Report.balance_table`, :meth:`Report.subgroup_table`) are built from registry numbers
only. A synthetic build (``stamp["synthetic"]``) carries a banner on every screen.
A section is rendered only when its stage has reported (:meth:`Report.has`);
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

from mydirection.reporting.figures import DPI
from mydirection.reporting.format import change_words, p_value_phrase, unsigned
from mydirection.reporting.jdl_tables import JdlTables, text
from mydirection.reporting.number_labels import number_label

#: Wider than this (pixels), a figure scrolls in its own box instead of shrinking to the page.
WIDE_FIGURE_PX = 1800


def png_width(path) -> int:
    """Pixel width from a PNG's header (0 when the file is not a readable PNG)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError:
        return 0
    return int.from_bytes(head[16:20], "big") if head[:8] == b"\x89PNG\r\n\x1a\n" else 0


class ReportKeyError(KeyError):
    """A rendered section refers to a registry key that no rule reported."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def figure_filename(key: str, path: str) -> str:
    """The name a figure gets next to the rendered source (stable, from its key)."""
    return "figures/" + re.sub(r"[^A-Za-z0-9_.-]", "_", key) + Path(path).suffix


class Report(JdlTables):
    """Template helpers over a loaded registry; records which keys a section has shown."""

    def __init__(self, registry: Mapping):
        self.numbers: dict = dict(registry.get("numbers", {}))
        self.figures: dict = dict(registry.get("figures", {}))
        self.rules: dict = dict(registry.get("rules", {}))
        self.relations: list = list(registry.get("relations", []))
        self.threshold = registry.get("threshold", 5)
        self.config_hash = registry.get("config_hash", "")
        self.used: set[str] = set()
        self.section_name = "(preamble)"

    # -- looking things up
    def section(self, name: str) -> str:
        """Mark the start of a section (used in error messages)."""
        self.section_name = name
        return ""

    def has(self, *rules: str) -> bool:
        """Whether one of ``rules`` has reported a number or a figure."""
        return any(k.split(".", 1)[0] in rules for k in self.numbers) or any(
            f["rule"] in rules for f in self.figures.values()
        )

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
        """The number's plain-English label (:func:`labels.number_label`: never its key).

        A label is registry text written by the rule (it may contain digits, e.g. a
        confidence level), so it is printed inside ``<span class="regtext" data-key=KEY>``.
        """
        e = self.entry(key) if key in self.numbers else self.figures[key]
        return self.regtext(key, number_label(key, e.get("label")))

    def regtext(self, key: str, value: str) -> Markup:
        """Text taken from the registry entry ``key`` (label, unit, caption), marked as such."""
        e = self.numbers.get(key) or self.figures[key]
        return Markup(
            f'<span class="regtext" data-key="{escape(key)}" title="rule: {escape(e["rule"])}">'
            f"{text(value)}</span>"
        )

    # -- printing numbers and figures
    def n(self, key: str) -> Markup:
        """A registry number as a span linking to its rule's provenance entry."""
        e = self.entry(key)
        self.used.add(key)
        cls = "num suppressed" if e.get("suppressed") else "num"
        if e.get("kind") == "text":
            cls += " text"
        title = f"{e.get('label') or key} (rule {e['rule']})"
        return Markup(
            f'<a class="numlink" href="#rule-{escape(e["rule"])}"><span class="{cls}" '
            f'data-key="{escape(key)}" title="{escape(title)}">{text(e["display"])}</span></a>'
        )

    def _span(self, key: str, shown: str, extra: str = "") -> Markup:
        """Like :meth:`n`, with ``shown`` (a form of the display) as the visible text."""
        e = self.entry(key)
        self.used.add(key)
        cls = "num suppressed" if e.get("suppressed") else "num"
        cls += f" {extra}" if extra else ""
        title = f"{e.get('label') or key} (rule {e['rule']})"
        return Markup(
            f'<a class="numlink" href="#rule-{escape(e["rule"])}"><span class="{cls}" '
            f'data-key="{escape(key)}" title="{escape(title)}">{text(shown)}</span></a>'
        )

    def size(self, key: str) -> Markup:
        """A size printed without a sign (a minimum detectable effect, an SD)."""
        return self._span(key, unsigned(self.entry(key)["display"]), "unsigned")

    def change(
        self, key: str, rise: str = "rose by", fall: str = "fell by", same: str = "did not change"
    ) -> Markup:
        """A change in words: "fell by 1.83", never "fell by −1.83" (:func:`change_words`)."""
        e = self.entry(key)
        verb, magnitude = change_words(
            e.get("value"), e["display"], rise=rise, fall=fall, same=same
        )
        if magnitude is None:
            self.used.add(key)
            return Markup(f'<span class="change" data-key="{escape(key)}">{text(verb)}</span>')
        if magnitude == e["display"]:
            return Markup(f"{text(verb)} ") + self.n(key)
        return Markup(f"{text(verb)} ") + self._span(key, magnitude, "unsigned")

    def p(self, key: str) -> Markup:
        """A p-value in prose: ``p = 0.042``, ``p < 0.001``, ``p > 0.999``."""
        e = self.entry(key)
        if e.get("suppressed") or e.get("kind") != "p_value":
            return Markup("p = ") + self.n(key)
        relation, shown = p_value_phrase(e["display"])
        if relation == "=":
            return Markup("p = ") + self.n(key)
        return Markup(f"p {escape(relation)} ") + self._span(key, shown, "pvalue")

    def opt(self, key: str, missing: str = "\u2014") -> Markup:
        """Like :meth:`n`, but an em dash when the key is absent (optional table cells)."""
        return self.n(key) if key in self.numbers else Markup(missing)

    def caption(self, key: str) -> Markup:
        """A figure caption with each ``{registry.key}`` printed as a linked number."""
        f = self.figures[key]
        parts = re.split(r"\{([a-z0-9_.]+)\}", f.get("caption", ""))
        out = Markup("")
        for i, part in enumerate(parts):
            out += self.n(part) if i % 2 else self.regtext(key, part)
        return out

    def fig(self, key: str) -> Markup:
        """A figure with its caption and a link to its rule's provenance entry; a figure that
        disclosure control withholds is replaced by a note."""
        if key not in self.figures:
            raise ReportKeyError(
                f"report section {self.section_name!r} uses figure {key!r}, which no rule "
                f"reported (figures: {', '.join(sorted(self.figures)) or 'none'})"
            )
        f = self.figures[key]
        self.used.add(key)
        rule = escape(f["rule"])
        link = (
            f'<a class="provlink" href="#rule-{rule}" data-key="{escape(key)}" '
            f'title="rule {rule}">(source: rule {text(f["rule"])})</a>'
        )
        if f.get("withheld"):
            return Markup(
                f'<p class="withheld" id="figure-{escape(key)}">A figure is withheld here: it '
                f"would show counts of fewer people than the suppression threshold. {link}</p>\n"
            )
        src = figure_filename(key, f["path"])
        alt = re.sub(r"\{[a-z0-9_.]+\}", "", f.get("caption") or key)
        width = png_width(f["path"])
        # a figure drawn wider than the page (the specification curve widens with its
        # specifications) keeps its legible size and scrolls sideways inside its own box
        wide = width > WIDE_FIGURE_PX
        style = f' style="width: {round(width * 96 / DPI)}px"' if wide else ""
        cls = ' class="wide"' if wide else ""
        return Markup(
            f'<figure id="figure-{escape(key)}"{cls}>\n'
            f'<img src="{escape(src)}" alt="{escape(alt)}"{style} />\n'
            f"<figcaption>{self.caption(key)} {link}</figcaption>\n</figure>\n"
        )

    def rest(self, *rules: str, heading: str = "Other numbers from this stage") -> Markup:
        """A table of the numbers of ``rules`` (a key starts with its rule's name) not yet
        shown in the section's prose."""
        keys = [
            k for k in sorted(self.numbers) if k not in self.used and k.split(".", 1)[0] in rules
        ]
        if not keys:
            return Markup("")
        rows = [
            f"<tr><td>{self.label(k)}</td><td>{self.n(k)}</td>"
            f"<td>{self.regtext(k, self.numbers[k].get('unit', ''))}</td></tr>"
            for k in keys
        ]
        return Markup(
            f'<details class="rest">\n<summary class="rest-heading">{text(heading)}</summary>\n'
            '<table class="rest">\n'
            "<thead><tr><th>Measure</th><th>Value</th><th>Unit</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows)
            + "\n</tbody>\n</table>\n</details>\n"
        )

    def rest_figures(self, *rules: str) -> Markup:
        """The figures of ``rules`` not yet shown."""
        keys = [
            k
            for k in sorted(self.figures)
            if k not in self.used and self.figures[k]["rule"] in rules
        ]
        return Markup("\n".join(self.fig(k) for k in keys))

    def leftover(self) -> tuple[list[str], list[str]]:
        """Numbers and figures no section has shown (rendered under "Other results")."""
        nums = [
            k for k in sorted(self.numbers) if k not in self.used and not k.startswith("config.")
        ]
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
                f'<details class="methods"><summary>Settings: <code class="ident">{text(group)}'
                "</code></summary>\n"
                f'<table class="methods" data-section="{escape(group)}">\n<thead><tr><th>Setting</th>'
                "<th>Value</th><th>Used by rules</th></tr></thead>\n<tbody>\n"
                + "\n".join(rows)
                + "\n</tbody>\n</table>\n</details>\n"
            )
        return Markup("\n".join(parts))

    def provenance(self) -> Markup:
        """One compact entry per rule: stage function, the rules its inputs came from (links
        upstream), and, folded away, code versions, settings and inputs with checksums.

        Groups of files (replicates, batches) are one line: their count and the manifest
        checksum the rule harness recorded. Every number links here; the full record is
        provenance.json beside the report.
        """
        n_numbers: dict[str, int] = {}
        for e in self.numbers.values():
            n_numbers[e.get("rule")] = n_numbers.get(e.get("rule"), 0) + 1
        n_figures: dict[str, int] = {}
        for f in self.figures.values():
            n_figures[f.get("rule")] = n_figures.get(f.get("rule"), 0) + 1
        parts = []
        for rule in sorted(self.rules):
            r = self.rules[rule]
            code = "".join(
                f"<li><code>{text(path)}</code> <code>{text(blob[:10])}</code></li>"
                for path, blob in sorted(r.get("code", {}).items())
            )
            settings = "".join(
                f"<li><code>{text(k)}</code> = "
                f"<code>{text(json.dumps(v, ensure_ascii=False, sort_keys=True))}</code></li>"
                for k, v in sorted(r.get("config", {}).items())
            )
            inputs, upstream, n_files = [], set(), 0
            for path, info in sorted(r.get("inputs", {}).items()):
                sha = info.get("sha256")
                made = info.get("made_by")
                if made:
                    upstream.add(made)
                if isinstance(sha, dict):
                    n = sha.get("files", 0)
                    n_files += n
                    inputs.append(
                        f"<li><code>{text(path)}</code>: {text(n)} files, manifest "
                        f"<code>{text(str(sha.get('manifest_sha256', ''))[:12])}</code></li>"
                    )
                    continue
                n_files += 1
                by = (
                    f' from <a href="#rule-{escape(made)}">{text(made)}</a>'
                    if made
                    else " (source)"
                )
                inputs.append(
                    f"<li><code>{text(path)}</code> <code>{text((sha or '')[:12])}</code>{by}</li>"
                )
            ups = ", ".join(f'<a href="#rule-{escape(u)}">{text(u)}</a>' for u in sorted(upstream))
            counts = f"{text(n_numbers.get(rule, 0))} numbers"
            if n_figures.get(rule):
                counts += f", {text(n_figures[rule])} figures"
            parts.append(
                f'<section class="rule-prov" id="rule-{escape(rule)}">\n'
                f"<h3>Rule {text(rule)}</h3>\n"
                f"<p>Stage <code>{text(r.get('stage') or 'script')}</code>, script "
                f"<code>{text(r.get('script', ''))}</code>; {counts}; "
                f"inputs from {ups or 'source files only'}.</p>\n"
                f"<details><summary>{text(len(r.get('code', {})))} code versions, "
                f"{text(len(r.get('config', {})))} settings, {text(n_files)} input files"
                f'</summary>\n<ul class="prov-code">{code}</ul>\n'
                f'<ul class="prov-settings">{settings or "<li>no settings</li>"}</ul>\n'
                f'<ul class="prov-inputs">{"".join(inputs) or "<li>no inputs</li>"}</ul>\n'
                f"</details>\n</section>\n"
            )
        feeds: dict[str, set] = {}
        for rule, r in self.rules.items():
            for info in r.get("inputs", {}).values():
                made = info.get("made_by")
                if made and made not in self.rules:
                    feeds.setdefault(made, set()).add(rule)
        for made in sorted(feeds):  # rules that report no numbers (batch rules): one line
            into = ", ".join(
                f'<a href="#rule-{escape(u)}">{text(u)}</a>' for u in sorted(feeds[made])
            )
            parts.append(
                f'<section class="rule-prov" id="rule-{escape(made)}">\n'
                f"<h3>Rule {text(made)}</h3>\n<p>Reports no numbers; its output files feed "
                f"{into} (their checksums are listed there).</p>\n</section>\n"
            )
        return Markup("".join(parts))

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


def provenance_document(registry: Mapping, stamp: Mapping) -> str:
    """The full machine-readable provenance written beside the report (provenance.json):
    the build stamp, every rule (code versions, settings, inputs with checksums and the rule
    that made each) and every number and figure with its rule (stable JSON text)."""
    number_fields = (
        "rule",
        "label",
        "kind",
        "unit",
        "value",
        "display",
        "suppressed",
        "derived_from",
    )
    doc = {
        "stamp": dict(stamp),
        "config_hash": registry.get("config_hash", ""),
        "threshold": registry.get("threshold"),
        "rules": registry.get("rules", {}),
        "numbers": {
            k: {f: e[f] for f in number_fields if f in e}
            for k, e in sorted(registry.get("numbers", {}).items())
        },
        "figures": registry.get("figures", {}),
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
