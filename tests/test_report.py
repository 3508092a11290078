"""The report: every number a registry span linking to its provenance row; disclosure
control; self-contained, deterministic HTML; sections that appear as stages land.

The fast tests build a small fake set of numbers files and tiny PNGs (``fake_results``) and
render with Pandoc; the Snakemake test runs the real report.smk on them twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from helpers import number

from mydirection.reporting.format import change_words, p_value_phrase, unsigned
from mydirection.reporting.provenance import sha256_file
from mydirection.reporting.registry import build_registry, dumps
from mydirection.reporting.render import (
    ReportKeyError,
    figure_filename,
    fill_template,
    render,
)
from mydirection.reporting.stamp import source_inputs

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "reports" / "evaluation.qmd"
ASSETS = [ROOT / "reports" / "style.css", ROOT / "reports" / "references.bib"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# A distinctive raw value that must never reach the registry or the report once suppressed.
SMALL_COUNT = 3
SMALL_SHARE = 3 / 937


def tiny_png(path: Path, rgb=(29, 112, 184), w: int = 6, h: int = 4) -> None:
    """A valid w x h RGB PNG (deterministic bytes)."""
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data + chunk(b"IEND", b""))


def fake_stage_numbers() -> dict[str, dict]:
    """rule -> (inputs, numbers, config, figures): one fake set covering every section."""
    return {
        "cohort": (
            ["data/synthetic/people.csv", "data/synthetic/supervision.csv"],
            {
                "cohort.n_treated": number(412, "count", "people"),
                "cohort.n_comparator_pool": number(23817, "count", "people"),
                "cohort.n_excluded_no_assessment": number(SMALL_COUNT, "count", "people"),
                "cohort.share_excluded_no_assessment": number(
                    SMALL_SHARE,
                    "proportion",
                    derived_from=["cohort.n_excluded_no_assessment"],
                    label="Share excluded for lack of an assessment",
                ),
                "cohort.n_excluded_zero": number(0, "count", "people", label="Excluded twice"),
            },
            {"cohort.min_age": 18},
            {
                "figures.attrition": {
                    "path": "results/figures/attrition.png",
                    "caption": "Attrition chevron: records kept and lost at each step.",
                }
            },
        ),
        "matching": (
            ["results/cohort/cohort.parquet"],
            {
                "matching.n_treated_matched": number(398, "count", "people"),
                "matching.n_comparators_matched": number(1194, "count", "people"),
                "matching.max_abs_smd_after": number(0.0623, "estimate", decimals=3),
                "matching.balance_ok": number("achieved", "text"),
            },
            {"matching.caliper": 0.2, "matching.ratio": 3},
            {
                "figures.love_plot": {
                    "path": "results/figures/love_plot.png",
                    "caption": "Love plot: standardised mean differences before and after matching.",
                },
                "figures.overlap": {
                    "path": "results/figures/overlap.png",
                    "caption": "Overlap of propensity scores.",
                },
            },
        ),
        "reoffending": (
            ["results/matching/matched.parquet", "results/outcomes/outcomes.parquet"],
            {
                "reoffending.rate_treated": number(0.3417, "proportion"),
                "reoffending.rate_comparison": number(0.3802, "proportion"),
                "reoffending.rate_difference": number(-0.0385, "pp"),
                "reoffending.rate_difference_ci_low": number(-0.0921, "pp"),
                "reoffending.rate_difference_ci_high": number(0.0151, "pp"),
                "reoffending.rate_difference_p": number(0.1592, "p_value"),
                "reoffending.frequency_difference": number(
                    -0.1234, "mean", "re-offences per person"
                ),
                "reoffending.typical_100_sentence": number(
                    "For every 100 typical people, between 9 fewer and 2 more re-offended.", "text"
                ),
            },
            {"effects.alpha": 0.05},
            {},
        ),
        "survival": (
            ["results/matching/matched.parquet", "results/outcomes/outcomes.parquet"],
            {"survival.hazard_ratio": number(0.912, "ratio")},
            {},
            {
                "figures.km": {
                    "path": "results/figures/km.png",
                    "caption": "Kaplan-Meier curves with 95% bands.",
                }
            },
        ),
        "power": (
            ["results/matching/matched.parquet"],
            {"power.mde_rate_pp": number(0.0873, "pp")},
            {"power.power": 0.8},
            {},
        ),
        "sensitivity": (
            ["results/matching/pairs.parquet"],
            {
                "sensitivity.gamma_crossing": number(1.35, "gamma"),
                "sensitivity.bounds_text": number("significant until the crossing Gamma", "text"),
                "sensitivity.evalue_rr": number(1.41, "ratio"),
            },
            {},
            {},
        ),
        "spec_curve": (
            ["results/sensitivity/specs/batch_0.parquet"],
            {
                "spec_curve.share_significant": number(
                    0.1, "proportion", label="Share of specifications with a 95% CI excluding zero"
                ),
            },
            {},
            {},
        ),
        "simulation": (
            ["config/synthetic.yaml"],
            {
                "simulation.measured.headline.coverage": number(0.946, "proportion"),
                "simulation.measured.headline.bias": number(0.0021, "pp"),
            },
            {"simulation.n_replicates": 200},
            {},
        ),
        "subgroups": (
            ["results/matching/matched.parquet"],
            {
                "subgroups.n_levels": number(2, "estimate", decimals=0),
                "subgroups.n_treated": number(398, "count", "people"),
                "subgroups.sex.female.n_treated": number(3, "count", "people"),
                "subgroups.sex.male.n_treated": number(395, "count", "people"),
                "subgroups.sex.female.n_comparison": number(40, "count", "people"),
                "subgroups.sex.male.n_comparison": number(1154, "count", "people"),
                "subgroups.sex.male.rate_difference": number(
                    -0.041, "pp", derived_from=["subgroups.sex.male.n_treated"]
                ),
                "subgroups.sex.male.rate_difference_ci_low": number(-0.1, "pp"),
                "subgroups.sex.male.rate_difference_ci_high": number(0.02, "pp"),
                "subgroups.sex.male.rate_difference_p": number(0.2, "p_value"),
            },
            {},
            {},
        ),
        "fidelity": (
            ["results/clean/plans.parquet"],
            {
                "fidelity.mean_index": number(63.2, "index", "points"),
                "fidelity.n_scored": number(377, "count", "people"),
                "fidelity.monthly_slope": number(-0.41, "estimate", "index points per month"),
                "fidelity.monthly_slope_ci_low": number(-0.62, "estimate"),
                "fidelity.monthly_slope_ci_high": number(-0.2, "estimate"),
            },
            {},
            {},
        ),
    }


#: Additive relations the fake stages declare (the subgroup levels add up to the total).
FAKE_RELATIONS = {
    "subgroups": [
        [
            "subgroups.n_treated",
            ["subgroups.sex.female.n_treated", "subgroups.sex.male.n_treated"],
            "part",
        ]
    ]
}

FAKE_CONFIG = {
    "seed": 20180101,
    "analysis": {"alpha": 0.05, "power": 0.8},
    "raw_dir": None,
    "cohort": {"min_age": 18},
    "matching": {"caliper": 0.2, "ratio": 3},
    "report": {"suppression_threshold": 5, "engine": "pandoc"},
}


def write_fake_inputs(root: Path) -> None:
    """The input files and figures the fake numbers files refer to (tiny, deterministic)."""
    for rule, (inputs, _, _, figures) in fake_stage_numbers().items():
        for p in inputs:
            f = root / p
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(f"fake input {p}\n")
        for i, fig in enumerate(figures.values()):
            tiny_png(root / fig["path"], rgb=(20 * i, 100, len(rule) * 10))
    (root / "scripts").mkdir(exist_ok=True)


def write_fake_numbers(root: Path) -> list[Path]:
    """Numbers files as the rule harness writes them, one per fake stage."""
    out = []
    for rule, (inputs, numbers, config_keys, figures) in fake_stage_numbers().items():
        path = root / "results" / "numbers" / f"{rule}.json"
        script = root / "scripts" / f"{rule}.py"
        script.write_text(f"# fake entry script of rule {rule}\n")
        doc = {
            "rule": rule,
            "stage": f"mydirection.fake.{rule}",
            "script": f"scripts/{rule}.py",
            "code": {f"scripts/{rule}.py": "0" * 40},
            "inputs": {p: sha256_file(root / p) for p in inputs},
            "outputs": {},
            "config": config_keys,
            "numbers": numbers,
            "figures": figures,
            "relations": FAKE_RELATIONS.get(rule, []),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        out.append(path)
    return out


def build(
    root: Path,
    *,
    drop: tuple[str, ...] = (),
    only: tuple[str, ...] | None = None,
    threshold: int = 5,
    override: dict | None = None,
    synthetic: bool = True,
) -> tuple[dict, Path]:
    """Fake numbers -> registry -> HTML (Pandoc) inside ``root``; returns (registry, html)."""
    write_fake_inputs(root)
    paths = write_fake_numbers(root)
    docs = []
    for p in paths:
        doc = json.loads(p.read_text())
        if only is not None and doc["rule"] not in only:
            continue
        doc["numbers"] = {k: v for k, v in doc["numbers"].items() if k not in drop}
        for k, v in (override or {}).items():
            if k in doc["numbers"]:
                doc["numbers"][k] = v
        docs.append(doc)
    with contextlib.chdir(root):
        registry = build_registry(
            docs, threshold=threshold, alpha=0.05, config=FAKE_CONFIG, schema={}
        )
        (root / "results" / "registry.json").write_text(dumps(registry))
        stamp = {
            "synthetic": synthetic,
            "build": {"data": "SYNTHETIC" if synthetic else "real", "commit": "unknown"},
            "packages": {},
            "inputs": source_inputs(registry),
        }
        markdown = fill_template(TEMPLATE, registry, stamp)
        figures = {figure_filename(k, f["path"]): f["path"] for k, f in registry["figures"].items()}
        html = root / "results" / "report" / "evaluation.html"
        render(markdown, figures, ASSETS, html, engine="pandoc")
    return registry, html


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    registry, html = build(root)
    return registry, html, BeautifulSoup(html.read_text(), "html.parser")


# ----------------------------------------------------------------------------- helpers
EXEMPT_SECTIONS = ("provenance", "reproducibility")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _exempt(parent, node) -> bool:
    classes = parent.get("class") or []
    return (
        parent.name in ("style", "script")
        or (parent.name == "span" and ("num" in classes or "citation" in classes))
        or (parent.name == "span" and "regtext" in classes and parent.get("data-key"))
        or parent.get("id") in (*EXEMPT_SECTIONS, "refs")
        or (parent.name == "code" and "ident" in classes and bool(IDENT.match(node.strip())))
    )


def stray_digits(soup: BeautifulSoup) -> list[str]:
    """Text in the body with a digit that is not inside a number span or an exempt zone.

    Also exempt: <span class="regtext" data-key=KEY>, text taken from the registry entry
    KEY (its label, unit or figure caption, written by the rule that made it).
    Exempt: the provenance appendix and reproducibility stamp, the bibliography (#refs),
    citations (their years), <style>/<script>, and <code class="ident"> setting names that
    are identifiers (start with a letter).
    """
    bad = []
    for node in soup.body.find_all(string=True):
        if re.search(r"\d", node) and not any(_exempt(p, node) for p in node.parents):
            bad.append(node.strip()[:80])
    return bad


# ----------------------------------------------------------------------------- tests
def test_every_digit_in_the_body_is_a_registry_number(built):
    _, _, soup = built
    assert stray_digits(soup) == []


def test_no_words_run_together(built):
    _, _, soup = built
    for section in soup.find_all("section"):
        if section.get("id") in ("provenance", "reproducibility", "methods", "references"):
            continue
        text = " ".join(section.get_text().split())
        assert not re.search(r"[a-z]\((?!s\))|\)[A-Za-z]", text), text


def test_stray_digit_check_can_fail(built):
    _, _, soup = built
    soup = BeautifulSoup(str(soup), "html.parser")
    soup.find(id="matching").append(BeautifulSoup("<p>balance on 12 covariates</p>", "html.parser"))
    assert stray_digits(soup) == ["balance on 12 covariates"]


def test_every_span_names_a_registry_key_and_links_to_its_rule(built):
    registry, _, soup = built
    spans = soup.select("span.num")
    assert len(spans) > 30
    keys = set(registry["numbers"]) | set(registry["figures"])
    for span in soup.select("span.regtext"):
        assert span["data-key"] in keys
    for span in spans:
        key = span["data-key"]
        assert key in keys
        rule = registry["numbers"][key]["rule"]
        assert span.parent.name == "a" and span.parent["href"] == f"#rule-{rule}"
        assert span["title"].endswith(f"(rule {rule})")
        display = registry["numbers"][key]["display"]
        if "unsigned" in span["class"]:  # a size, or a change whose direction is in words
            display = unsigned(display)
        elif "pvalue" in span["class"]:  # "p < 0.001": the relation is outside the span
            display = p_value_phrase(display)[1]
        assert " ".join(span.get_text().split()) == display
    # one provenance entry per rule, with its stage, code versions, settings and inputs
    for rule, entry in registry["rules"].items():
        section = soup.find(id=f"rule-{rule}")
        assert section is not None, rule
        text = section.get_text(" ")
        assert (entry["stage"] or "script") in text
        for path in entry["inputs"]:
            assert path in text
        for made in {i["made_by"] for i in entry["inputs"].values() if i["made_by"]}:
            assert section.find("a", href=f"#rule-{made}"), (rule, made)


def test_figures_are_embedded_and_captions_link_to_provenance(built):
    registry, _, soup = built
    figures = soup.find_all("figure")
    assert len(figures) == len(registry["figures"]) == 4
    for fig in figures:
        assert fig.img["src"].startswith("data:image/png;base64,")
        link = fig.figcaption.find("a", class_="provlink")
        assert link["data-key"] in registry["figures"]
        assert link["href"] == f"#rule-{registry['figures'][link['data-key']]['rule']}"


def test_report_is_self_contained(built):
    _, html, soup = built
    for tag in soup.find_all(["img", "script", "link", "iframe", "source"]):
        for attr in ("src", "href"):
            assert not str(tag.get(attr, "")).startswith(("http:", "https:", "//")), tag
    assert "mathjax" not in html.read_text().lower()


def test_sections_in_jdl_order(built):
    _, _, soup = built
    ids = [
        s["id"]
        for s in soup.find_all("section")
        if s.get("id") and s.find_parent("section") is None
    ]
    expected = [
        "summary",
        "pilot",
        "cohort",
        "matching",
        "reoffending",
        "fidelity",
        "trust",
        "limitations",
        "methods",
        "references",
        "reproducibility",
        "provenance",
    ]
    assert [i for i in ids if i in expected] == expected
    for h in soup.find_all(["h1", "h2", "h3"]):
        assert not re.search(r"\d", "".join(h.find_all(string=True, recursive=False))), h


def test_summary_reading_is_computed_from_registry(built):
    registry, _, soup = built
    summary = soup.find(id="summary")
    nums = registry["numbers"]
    # 34.17 % and 38.02 % of 100 people -> 34 and 38; the CI spans zero -> not significant
    assert nums["registry.typical_treated"]["display"] == "34"
    assert nums["registry.typical_comparison"]["display"] == "38"
    assert nums["registry.verdict"]["display"] == "not statistically significant"
    assert nums["registry.power_caveat"]["display"] == "smaller than"
    text = " ".join(summary.get_text(" ", strip=True).split())
    assert "not statistically significant" in text
    assert "could easily go undetected" in text
    assert "8.7 pp" in text and "+8.7 pp" not in text  # the MDE: a size, without a sign


def test_suppressed_numbers_never_show_the_raw_value(built):
    registry, html, soup = built
    small = registry["numbers"]["cohort.n_excluded_no_assessment"]
    share = registry["numbers"]["cohort.share_excluded_no_assessment"]
    assert small["suppressed"] and small["value"] is None and small["display"] == "<5"
    assert share["suppressed"] and share["value"] is None and share["display"] == "[c]"
    zero = registry["numbers"]["cohort.n_excluded_zero"]
    assert not zero["suppressed"] and zero["display"] == "0"
    text = html.read_text()
    reg_text = dumps(registry)
    for raw in (repr(SMALL_SHARE), f"{100 * SMALL_SHARE:.1f}%", f"{SMALL_SHARE:.4f}"):
        assert raw not in text and raw not in reg_text
    span = soup.find("span", class_="num", attrs={"data-key": "cohort.n_excluded_no_assessment"})
    assert span.get_text() == "<5" and "suppressed" in span["class"]


def test_methods_appendix_lists_config_with_users(built):
    registry, _, soup = built
    methods = soup.find(id="methods")
    caliper = methods.find("span", attrs={"data-key": "config.matching.caliper"})
    assert caliper.get_text() == "0.2"
    row = caliper.find_parent("tr")
    assert "matching" in row.find_all("td")[2].get_text()


def test_section_renders_only_when_its_stage_has_reported(tmp_path):
    registry, html = build(tmp_path, only=("cohort",))
    soup = BeautifulSoup(html.read_text(), "html.parser")
    assert soup.find(id="matching").find("span", class_="num") is None
    assert "Matching has not been run yet" in soup.find(id="matching").get_text()
    assert soup.find(id="cohort").find("span", attrs={"data-key": "cohort.n_treated"})
    assert stray_digits(soup) == []


def test_missing_key_in_a_present_section_fails_naming_it(tmp_path):
    with pytest.raises(ReportKeyError, match=r"'matching.max_abs_smd_after'.*matching"):
        build(tmp_path, drop=("matching.max_abs_smd_after",))


def test_two_builds_are_byte_identical(tmp_path):
    reg_a, html_a = build(tmp_path / "a")
    reg_b, html_b = build(tmp_path / "b" / "elsewhere")
    assert (tmp_path / "a/results/registry.json").read_bytes() == (
        tmp_path / "b/elsewhere/results/registry.json"
    ).read_bytes()
    assert html_a.read_bytes() == html_b.read_bytes()
    assert str(tmp_path) not in html_a.read_text()


# ----------------------------------------------------------------------------- browser
def chromium_driver(tmp_path):
    """Headless Chromium via selenium, or a skip naming what is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            "/usr/bin/chromium is not installed (apt-get install chromium chromium-driver; "
            ".ci/run installs it)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def test_report_in_headless_chromium(built, tmp_path):
    registry, html, _ = built
    driver = chromium_driver(tmp_path)
    try:
        driver.get(html.as_uri())
        driver.save_screenshot("/tmp/report_first_screen.png")
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
        key = "matching.max_abs_smd_after"
        link = driver.find_element("css selector", f'a.numlink:has(span[data-key="{key}"])')
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
        driver.execute_script(
            "document.getElementById('matching').scrollIntoView({block: 'start'});"
        )
        driver.save_screenshot("/tmp/report_matching.png")
        title = link.find_element("css selector", "span.num").get_attribute("title")
        assert title.endswith("(rule matching)")
        link.click()
        assert driver.execute_script("return location.hash") == "#rule-matching"
        target = driver.execute_script("return document.querySelector(':target')")
        assert target.get_attribute("id") == "rule-matching"
        assert target.tag_name == "section"
        in_view = driver.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "return r.top >= -1 && r.top < window.innerHeight && r.bottom > 0;",
            target,
        )
        assert in_view
        assert "matching" in target.text and registry["rules"]["matching"]["stage"] in target.text
        driver.save_screenshot("/tmp/report_provenance_row.png")
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
    finally:
        driver.quit()


MAX_PAGE_HEIGHT = 40_000  # px at 1280 px: the body plus the compact provenance appendix
# The visible text outside the appendices that name settings, files and hashes by design.
VISIBLE_TEXT_JS = """
const skip = ["methods", "reproducibility", "provenance", "refs", "references"];
const clone = document.body.cloneNode(true);
for (const id of skip) { const n = clone.querySelector("#" + id); if (n) n.remove(); }
clone.querySelectorAll("script, style").forEach(n => n.remove());
document.body.appendChild(clone); clone.style.position = "absolute";
const text = clone.innerText; clone.remove(); return text;
"""


def report_under_test(built) -> list[Path]:
    """The fake report, and the pipeline's own report when one has been built here."""
    out = [built[1]]
    own = ROOT / "results" / "report" / "evaluation.html"
    if own.is_file():
        out.append(own)
    return out


@pytest.mark.slow
def test_report_layout_in_headless_chromium(built, tmp_path):
    """Page height at 1280 px, no horizontal overflow at 420 px, the synthetic banner on
    screen wherever the reader scrolls, and no registry key visible as text."""
    registry, _, _ = built
    driver = chromium_driver(tmp_path)
    try:
        for html in report_under_test(built):
            reg = registry
            if html != built[1]:
                reg = json.loads((ROOT / "results" / "registry.json").read_text())
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            )
            driver.get(html.as_uri())
            height = driver.execute_script("return document.documentElement.scrollHeight")
            assert height < MAX_PAGE_HEIGHT, (html, height)
            banner = driver.find_element("id", "synthetic-banner")
            assert "Synthetic data — a demonstration, not findings" in banner.text
            for y in (0, height // 2, height):
                driver.execute_script(f"window.scrollTo(0, {y});")
                top, bottom = driver.execute_script(
                    "const r = arguments[0].getBoundingClientRect(); return [r.top, r.bottom];",
                    banner,
                )
                assert top >= -1 and bottom <= 900 and bottom > 0, (html, y, top)
            visible = driver.execute_script(VISIBLE_TEXT_JS)
            assert registry_keys_in(visible, reg) == [], html
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": 420, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            )
            driver.get(html.as_uri())
            scroll_w, client_w = driver.execute_script(
                "const d = document.documentElement; return [d.scrollWidth, d.clientWidth];"
            )
            assert scroll_w <= client_w, (html, scroll_w, client_w)
            driver.save_screenshot(str(tmp_path / "narrow.png"))
    finally:
        driver.quit()


def test_quarto_renders_the_same_template(tmp_path):
    if shutil.which("quarto") is None:
        pytest.skip("quarto is not on the PATH: the report is rendered by Pandoc (pypandoc)")
    root = tmp_path / "q"
    _, html = build(root)
    with contextlib.chdir(root):
        registry = json.loads((root / "results" / "registry.json").read_text())
        stamp = {"build": {"commit": "unknown"}, "packages": {}, "inputs": {}}
        markdown = fill_template(TEMPLATE, registry, stamp)
        figures = {figure_filename(k, f["path"]): f["path"] for k, f in registry["figures"].items()}
        out = root / "results" / "report" / "quarto.html"
        render(markdown, figures, ASSETS, out, engine="quarto")
    soup = BeautifulSoup(out.read_text(), "html.parser")
    assert stray_digits(soup) == []
    assert soup.find(id="prov-matching.max_abs_smd_after") is not None
    assert all(f.img["src"].startswith("data:") for f in soup.find_all("figure"))


# ----------------------------------------------------------------------------- snakemake
FAKE_STAGE_SCRIPT = """
import json
import shutil
from pathlib import Path

from mydirection.runner import Job

spec = json.loads(Path(snakemake.input.spec).read_text())
for path in snakemake.output.figures:
    shutil.copyfile("spec/tiny.png", path)
doc = {**Job(snakemake).provenance(), "numbers": spec["numbers"], "figures": spec["figures"],
       "relations": []}
doc["config"] = {f"{snakemake.rule}.{k}": v for k, v in snakemake.params.cfg.items()}
Path(snakemake.output.numbers).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\\n")
"""


def make_workflow(root: Path) -> None:
    """A small workflow: one fake rule per stage, then the real report.smk."""
    write_fake_inputs(root)
    (root / "spec").mkdir()
    tiny_png(root / "spec" / "tiny.png")
    shutil.rmtree(root / "results" / "figures")
    rules = []
    config = json.loads(json.dumps(FAKE_CONFIG))
    for rule, (inputs, numbers, _, figures) in fake_stage_numbers().items():
        config.setdefault(rule, {"setting": 1})
        (root / "spec" / f"{rule}.json").write_text(
            json.dumps({"numbers": numbers, "figures": figures})
        )
        figs = [f["path"] for f in figures.values()]
        rules.append(
            f"rule {rule}:\n"
            f"    input: {inputs!r}, spec='spec/{rule}.json'\n"
            f"    output: numbers='results/numbers/{rule}.json', figures={figs!r}\n"
            f"    params: cfg=config[{rule!r}]\n"
            f"    log: 'results/logs/{rule}.log'\n"
            "    script: 'scripts/fake_stage.py'\n\n"
            f"NUMBERS.append('results/numbers/{rule}.json')\n"
            f"FIGURES.extend({figs!r})\n"
        )
    (root / "config").mkdir(exist_ok=True)
    (root / "config" / "config.yaml").write_text(json.dumps(config, indent=1))
    (root / "scripts" / "fake_stage.py").write_text(FAKE_STAGE_SCRIPT)
    for rel in (
        "scripts/registry.py",
        "scripts/report.py",
        "workflow/rules/report.smk",
        "environment.yml",
        "workflow/schemas/config.schema.yaml",
        "reports/evaluation.qmd",
        "reports/style.css",
        "reports/references.bib",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, root / rel)
    (root / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n\nNUMBERS = []\nFIGURES = []\nALL_TARGETS = []\n'
        "SYNTHETIC = True\n\n"
        "def code(script):\n    return [script]\n\n"
        + "\n".join(rules)
        + '\ninclude: "workflow/rules/report.smk"\n\n'
        "rule all:\n    default_target: True\n    input: ALL_TARGETS\n"
    )


def snakemake(root: Path, *args: str) -> str:
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run(
        [str(exe), "--cores", "1", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def rules_to_run(root: Path) -> set[str]:
    """Rules a dry run would execute (from Snakemake's job table)."""
    out = snakemake(root, "-n")
    jobs = re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", out, flags=re.M)
    return set(jobs) - {"all"}


@pytest.mark.slow
def test_snakemake_builds_twice_identically_and_reruns_only_users(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b" / "other"
    for root in (a, b):
        make_workflow(root)
        snakemake(root)
    for rel in (
        "results/registry.json",
        "results/report/evaluation.html",
        "results/report/provenance.json",
        "results/report/tables.xlsx",
        "results/report/tables/index.csv",
        "results/report/tables/reoffending-1.csv",
    ):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    run_log = json.loads((a / "results/report/run_log.json").read_text())
    assert run_log["seconds"] >= 0 and "started_utc" in run_log
    assert "started_utc" not in (a / "results/report/evaluation.html").read_text()
    assert rules_to_run(a) == set()
    config = a / "config" / "config.yaml"
    original = config.read_text()
    edited = json.loads(original)
    edited["report"]["suppression_threshold"] = 10
    config.write_text(json.dumps(edited))
    assert rules_to_run(a) == {"registry", "report"}
    edited = json.loads(original)
    edited["fidelity"]["setting"] = 2
    config.write_text(json.dumps(edited))
    assert rules_to_run(a) == {"fidelity", "registry", "report"}


def test_text_is_escaped_once_for_markdown_and_html():
    from mydirection.reporting.render import text

    assert text('a "b" <5> [c] *d* @e 100%') == (
        "a &#34;b&#34; &lt;5&gt; &#91;c&#93; &#42;d&#42; &#64;e 100%"
    )


def test_limitations_are_generated_from_the_numbers(tmp_path):
    _, html = build(
        tmp_path,
        override={
            "matching.balance_ok": number("not achieved", "text"),
            "power.mde_rate_pp": number(0.02, "pp"),
        },
    )
    soup = BeautifulSoup(html.read_text(), "html.parser")
    limits = " ".join(soup.find(id="limitations").get_text(" ").split())
    assert "Balance was not achieved" in limits
    assert "ways the matching did not remove" in " ".join(
        soup.find(id="matching").get_text().split()
    )
    # the observed difference (3.9 points) is larger than an MDE of 2 points: no power caveat
    assert "weak evidence of no effect" not in limits
    assert "2.0 pp" in limits and "+2.0 pp" not in limits  # a size, no sign
    assert "Fidelity decayed" in limits
    assert stray_digits(soup) == []


def test_subgroup_table_with_secondary_suppression(built):
    registry, _, soup = built
    table = soup.find("table", class_="subgroups")
    rows = [
        [" ".join(td.get_text().split()) for td in tr.find_all("td")]
        for tr in table.tbody.find_all("tr")
    ]
    assert rows[0][:4] == ["Sex", "female", "<5", "40"]
    # the only other level is suppressed too (else 398 - 395 gives the female count away),
    # and with it the male rate difference derived from that count
    assert rows[1][:3] == ["Sex", "male", "[c]"] and rows[1][4] == "[c]"
    assert registry["numbers"]["subgroups.sex.male.n_treated"]["value"] is None


# ----------------------------------------------------------------------------- wording
MINUS = "\u2212"


@pytest.mark.parametrize(
    ("value", "display", "expected"),
    [
        (1.83, "+1.83", ("rose by", "1.83")),
        (1.83, "1.83", ("rose by", "1.83")),
        (-1.83, f"{MINUS}1.83", ("fell by", "1.83")),
        (-1.83, "-1.83", ("fell by", "1.83")),
        (-0.021, f"{MINUS}2.1 pp", ("fell by", "2.1 pp")),
        (0.021, "+2.1 pp", ("rose by", "2.1 pp")),
        (0.0, "0.00", ("did not change", None)),
        (-0.001, "0.00", ("did not change", None)),  # prints as zero: no direction
        (0.0, "0.0 pp", ("did not change", None)),
        (None, "[c]", ("changed by", "[c]")),  # suppressed: no direction implied
        (None, "<5", ("changed by", "<5")),
    ],
)
def test_change_words_matrix(value, display, expected):
    assert change_words(value, display) == expected


def test_sizes_and_p_values_in_words():
    assert unsigned(f"{MINUS}1.83") == "1.83"
    assert unsigned("+8.7 pp") == "8.7 pp"
    assert unsigned("0.25") == "0.25"
    assert unsigned("<5") == "<5" and unsigned("[c]") == "[c]"
    assert p_value_phrase("<0.001") == ("<", "0.001")
    assert p_value_phrase(">0.999") == (">", "0.999")
    assert p_value_phrase("0.042") == ("=", "0.042")


def test_p_values_and_changes_read_as_words_in_the_report(tmp_path):
    _, html = build(
        tmp_path,
        override={
            "reoffending.rate_difference_p": number(0.00001, "p_value"),
            "panel.did_p": number(0.99999, "p_value"),
        },
    )
    soup = BeautifulSoup(html.read_text(), "html.parser")
    text = " ".join(soup.body.get_text(" ").split())
    assert "p < 0.001" in " ".join(soup.find(id="summary").get_text(" ").split())
    assert "p = <" not in text and "p = >" not in text
    assert "fell by " + MINUS not in text and "rose by +" not in text
    assert "by " + MINUS not in text


# ----------------------------------------------------------------------------- labels
DOTTED_KEY = re.compile(r"\b[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+\b")


def visible_text(soup: BeautifulSoup) -> str:
    """The body's text outside the appendices that name files and settings by design
    (methods: setting names as in config.yaml; stamp and provenance: paths and hashes)."""
    soup = BeautifulSoup(str(soup), "html.parser")
    for sid in ("methods", "reproducibility", "provenance", "references"):
        node = soup.find(id=sid)
        if node is not None:
            node.decompose()
    for tag in soup.find_all(["style", "script"]):
        tag.decompose()
    return " ".join(soup.body.get_text(" ").split())


def registry_keys_in(text: str, registry: dict) -> list[str]:
    keys = set(registry["numbers"]) | set(registry["figures"])
    keys |= {k.split(".", 1)[1] for k in keys if "." in k}  # also without the stage prefix
    return sorted({m for m in DOTTED_KEY.findall(text) if m in keys})


def test_every_registry_number_has_a_plain_english_label(built):
    registry, _, _ = built
    for key, e in registry["numbers"].items():
        label = e.get("label") or ""
        assert label.strip(), f"{key} has no label"
        if key.startswith("config."):
            continue  # a setting is named as in config.yaml (methods appendix)
        assert label != key and "_" not in label and not DOTTED_KEY.fullmatch(label), (key, label)


def test_no_registry_key_is_visible_as_text(built):
    registry, _, soup = built
    text = visible_text(soup)
    assert registry_keys_in(text, registry) == []
    assert re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", text) == []  # no column names
    # every row of every "Other numbers" table has a label, never an identifier
    for table in soup.select("table.rest"):
        for tr in table.tbody.find_all("tr"):
            first = tr.find("td")
            assert first.find("code") is None and first.get_text().strip(), str(tr)


def test_registry_key_check_can_fail(built):
    registry, _, soup = built
    soup = BeautifulSoup(str(soup), "html.parser")
    soup.find(id="cohort").append(
        BeautifulSoup("<p>cohort.n_excluded_no_assessment</p>", "html.parser")
    )
    assert registry_keys_in(visible_text(soup), registry) == ["cohort.n_excluded_no_assessment"]


# ----------------------------------------------------------------------------- synthetic
def test_synthetic_build_has_a_banner_and_says_so_in_the_stamp(built, tmp_path):
    _, _, soup = built
    banner = soup.find(id="synthetic-banner")
    assert banner is not None
    assert "Synthetic data — a demonstration, not findings" in banner.get_text()
    assert "SYNTHETIC" in soup.find("table", class_="stamp").get_text()
    css = (ROOT / "reports" / "style.css").read_text()
    assert re.search(r"\.synthetic-banner\s*\{[^}]*position:\s*(fixed|sticky)", css)
    _, real = build(tmp_path, synthetic=False)
    real_soup = BeautifulSoup(real.read_text(), "html.parser")
    assert real_soup.find(id="synthetic-banner") is None
    assert "Synthetic data" not in real_soup.body.get_text()


# ----------------------------------------------------------------------------- provenance
def test_provenance_summarises_groups_of_files(tmp_path):
    from mydirection.reporting.render import Report

    registry = {
        "numbers": {"simulation.coverage": {"rule": "simulation", "display": "95%"}},
        "rules": {
            "simulation": {
                "stage": "mydirection.simulation.summarise",
                "script": "scripts/simulation_summary.py",
                "code": {"scripts/simulation_summary.py": "a" * 40},
                "config": {"simulation.replicates": 400},
                "inputs": {
                    "batches (400 files)": {
                        "sha256": {"files": 400, "manifest_sha256": "b" * 64},
                        "made_by": None,
                    },
                    "results/cohort/cohort.parquet": {"sha256": "c" * 64, "made_by": "cohort"},
                },
            },
            "cohort": {"stage": "mydirection.cohort.build", "script": "scripts/cohort.py"},
        },
    }
    html = str(Report(registry).provenance())
    soup = BeautifulSoup(html, "html.parser")
    entry = soup.find(id="rule-simulation")
    assert entry.find("a", href="#rule-cohort")
    items = entry.select("ul.prov-inputs li")
    assert len(items) == 2
    assert "400 files, manifest bbbbbbbbbbbb" in items[0].get_text()
    assert len(html) < 3000


def test_provenance_document_beside_the_report(built):
    from mydirection.reporting.render import provenance_document

    registry, _, _ = built
    stamp = {"synthetic": True, "build": {"commit": "abc"}}
    doc = json.loads(provenance_document(registry, stamp))
    assert doc["stamp"]["synthetic"] is True
    assert set(doc["rules"]) == set(registry["rules"])
    assert set(doc["numbers"]) == set(registry["numbers"])
    for e in doc["numbers"].values():
        assert e["rule"] in doc["rules"] and e["label"]
    assert provenance_document(registry, stamp) == provenance_document(registry, stamp)


# ----------------------------------------------------------------------------- exports
def html_table_cells(soup: BeautifulSoup) -> list[list[list[str]]]:
    """Every published table's cells as the reader sees them (BeautifulSoup, independent of
    the exporter's own parser)."""
    out = []
    for table in soup.body.find_all("table"):
        if "stamp" in (table.get("class") or []) or table.find_parent(id="provenance"):
            continue
        if table.find_parent("table") is not None:
            continue
        rows = [
            [" ".join(c.get_text().split()) for c in tr.find_all(["th", "td"])]
            for tr in table.find_all("tr")
        ]
        if rows:
            out.append(rows)
    return out


def test_tables_are_exported_as_csv_and_xlsx_with_suppressed_cells(built, tmp_path):
    import csv as csvmod

    from mydirection.reporting.exports import html_tables, read_xlsx, write_csvs, write_xlsx

    _, html, soup = built
    tables = html_tables(html.read_text())
    expected = html_table_cells(soup)
    assert [t.rows for t in tables] == expected
    assert len(tables) >= 5
    folder, xlsx = tmp_path / "tables", tmp_path / "tables.xlsx"
    write_csvs(tables, folder)
    write_xlsx(tables, xlsx)
    sheets = read_xlsx(xlsx)
    index = sheets.pop("index")
    assert [row[0] for row in index[1:]] == [t.name for t in tables]
    flat_html = [c for rows in expected for row in rows for c in row]
    assert "<5" in flat_html and "[c]" in flat_html  # the fake data has suppressed cells
    for t, (_, sheet_name, *_rest) in zip(tables, index[1:], strict=True):
        rows = sheets[sheet_name]
        width = max(len(r) for r in t.rows)
        assert [r + [""] * (width - len(r)) for r in t.rows] == [
            r + [""] * (width - len(r)) for r in rows
        ]
        with (folder / f"{t.name}.csv").open(newline="") as fh:
            assert list(csvmod.reader(fh)) == t.rows
    # deterministic bytes
    write_xlsx(tables, tmp_path / "again.xlsx")
    assert (tmp_path / "again.xlsx").read_bytes() == xlsx.read_bytes()


# ----------------------------------------------------------------------------- JDL tables
def test_attrition_table_follows_the_chain_through_matching():
    from mydirection.reporting.render import Report

    def num(display, label=""):
        return {"rule": "cohort", "display": display, "label": label, "kind": "count"}

    base = "cohort.attrition."
    numbers = {}
    relations = []
    steps = [
        ("received", "Records received"),
        ("adult", "Aged 18 or over"),
        ("window", "In window"),
    ]
    for i, (step, label) in enumerate(steps):
        for group in ("treated", "comparator"):
            numbers[f"{base}{step}.{group}.remaining"] = num(
                str(100 - i), f"{label}: {group}, remaining"
            )
            if i:
                numbers[f"{base}{step}.{group}.lost"] = num("<5" if group == "treated" else "7")
                prev = steps[i - 1][0]
                relations.append(
                    [
                        f"{base}{prev}.{group}.remaining",
                        [f"{base}{step}.{group}.remaining", f"{base}{step}.{group}.lost"],
                        "total",
                    ]
                )
    relations.reverse()  # the order comes from the chain, not from the list
    numbers["matching.n_treated_matched"] = {**num("90"), "rule": "matching"}
    numbers["matching.n_treated_unmatched"] = {**num("8"), "rule": "matching"}
    numbers["matching.n_comparators_matched"] = {**num("90"), "rule": "matching"}
    report = Report({"numbers": numbers, "relations": relations})
    assert report.attrition_steps() == ["received", "adult", "window"]
    soup = BeautifulSoup(str(report.attrition_table()), "html.parser")
    rows = [
        [" ".join(c.get_text().split()) for c in tr.find_all(["th", "td"])]
        for tr in soup.tbody.find_all("tr")
    ]
    assert rows[0] == ["Records received", "100", "—", "100", "—"]
    assert rows[1] == ["Aged 18 or over", "99", "<5", "99", "7"]
    assert rows[3][:4] == ["Matched (propensity score)", "90", "8", "90"]
    assert len(rows) == 4


def test_identifiers_in_stage_texts_read_as_words():
    from mydirection.reporting.number_labels import readable_text

    assert readable_text("copas_rate") == "Rate of offending (Copas)"
    assert readable_text("extra terms n_previous_offences^2") == (
        "extra terms previous proven offences^2"
    )
    assert readable_text("on logit_ps, exact on sentence_type") == (
        "on the logit of the propensity score, exact on sentence type"
    )
    assert readable_text("Sentence type: community_order, licence") == (
        "Sentence type: community order, licence"
    )
    assert readable_text("by ogrs3_2yr") == "by OGRS3 score (two years)"
    assert readable_text("no identifiers, 0.2 SD") == "no identifiers, 0.2 SD"


def test_inputs_name_the_rule_that_made_them_even_without_numbers():
    from mydirection.reporting.registry import producer_of

    producers = {
        "simulation_batch": ["results/simulation/batches/batch_{batch}.parquet"],
        "report": ["results/report/evaluation.html", "results/report/tables"],
        "clean": ["results/clean/{extract}.parquet"],
    }
    assert producer_of("results/simulation/batches/batch_3.parquet", producers) == (
        "simulation_batch"
    )
    assert producer_of("results/clean/people.parquet", producers) == "clean"
    assert producer_of("results/clean/raw/people.parquet", producers) is None  # no "/"
    assert producer_of("results/report/tables/cohort-1.csv", producers) == "report"
    assert producer_of("data/synthetic/people.csv", producers) is None
    doc = {
        "rule": "simulation",
        "script": "scripts/simulation_summary.py",
        "inputs": {"results/simulation/batches/batch_0.parquet": "a" * 64},
        "numbers": {},
    }
    registry = build_registry([doc], threshold=5, alpha=0.05, producers=producers)
    made = registry["rules"]["simulation"]["inputs"]["results/simulation/batches/batch_0.parquet"]
    assert made["made_by"] == "simulation_batch"
    from mydirection.reporting.render import Report

    soup = BeautifulSoup(str(Report(registry).provenance()), "html.parser")
    assert soup.find(id="rule-simulation").find("a", href="#rule-simulation_batch")
    stub = soup.find(id="rule-simulation_batch")  # the link lands on an entry
    assert stub.find("a", href="#rule-simulation")


def test_power_caveat_follows_the_verdict(tmp_path):
    """A significant difference smaller than the MDE is not called "non-significant"."""
    _, html = build(
        tmp_path,
        override={
            "reoffending.rate_difference_ci_low": number(-0.07, "pp"),
            "reoffending.rate_difference_ci_high": number(-0.008, "pp"),
            "reoffending.rate_difference_p": number(0.02, "p_value"),
        },
    )
    soup = BeautifulSoup(html.read_text(), "html.parser")
    summary = " ".join(soup.find(id="summary").get_text(" ").split())
    assert "statistically significant reduction" in summary
    assert "non-significant" not in summary and "overstate the true effect" in summary
    limits = " ".join(soup.find(id="limitations").get_text(" ").split())
    assert "absence of a significant effect" not in limits


def test_a_number_without_a_label_is_flagged_and_never_shows_its_key(built):
    registry, _, soup = built
    # the fake cohort count has no label of its own: labelled from its key, and flagged
    assert "cohort.n_treated" in registry["unlabelled"]
    assert registry["numbers"]["cohort.n_treated"]["label"] == "Number of treated"
    assert "cohort.share_excluded_no_assessment" not in registry["unlabelled"]


def test_the_pipelines_own_numbers_all_have_labels():
    """Run after a build in this checkout (skipped otherwise): every number the pipeline
    reports carries a label written by its rule (or reporting/number_labels.py)."""
    path = ROOT / "results" / "registry.json"
    if not path.is_file():
        pytest.skip("no results/registry.json here: build the pipeline first")
    registry = json.loads(path.read_text())
    assert registry.get("unlabelled", []) == []


def test_balance_table_beside_the_love_plot():
    import pandas as pd

    from mydirection.reporting.balance_table import balance_numbers
    from mydirection.reporting.numbers import Numbers
    from mydirection.reporting.render import Report

    balance = pd.DataFrame(
        {
            "covariate": ["age", "index_offence_group_possession_of_weapons"],
            "variable": ["age", "index_offence_group"],
            "level": [None, "possession_of_weapons"],
            "smd_before": [-0.31, 0.25],
            "smd_after": [-0.02, 0.14],
            "var_ratio_after": [1.1, float("nan")],
            "mean_treated": [31.0, 0.05],  # never reported
        }
    )
    n = Numbers()
    balance_numbers(balance, n)
    doc = {"rule": "matching", "script": "scripts/matching.py", "numbers": n.as_dict()}
    config = {"matching": {"smd_threshold": 0.1}}
    registry = build_registry([doc], threshold=5, alpha=0.05, config=config)
    assert not any("mean" in k for k in registry["numbers"])
    assert "matching.balance.age.var_ratio_after" in registry["numbers"]
    assert (
        "matching.balance.index_offence_group_possession_of_weapons.var_ratio_after"
        not in (registry["numbers"])
    )
    soup = BeautifulSoup(str(Report(registry).balance_table()), "html.parser")
    rows = [
        [" ".join(c.get_text().split()) for c in tr.find_all(["th", "td"])]
        for tr in soup.tbody.find_all("tr")
    ]
    assert rows[0] == ["Age", "−0.310", "−0.020", "1.10", "within"]
    assert rows[1] == [
        "Index offence: possession of weapons",
        "0.250",
        "0.140",
        "—",
        "above the threshold",
    ]


def test_the_profile_of_participants_not_included_is_a_table():
    from mydirection.reporting.render import Report

    def num(display, label):
        return {"rule": "cohort", "display": display, "label": label, "kind": "count"}

    p = "cohort.excluded_profile."
    numbers = {
        p + "n": num("12", "Participants not included in the analysis"),
        p + "sex.male": num("9", "Participants not included: sex male"),
        p + "sex.female": num("<5", "Participants not included: sex female"),
        p + "age_band.18-24": num("[c]", "Participants not included: age at enrolment 18-24"),
        p + "age_band.under 18": num("0", "Participants not included: age at enrolment under 18"),
        p + "sex.not_recorded": num("0", "Participants not included: sex not recorded"),
    }
    soup = BeautifulSoup(
        str(Report({"numbers": numbers, "relations": []}).excluded_profile_table()), "html.parser"
    )
    rows = [
        [c.get_text(" ", strip=True) for c in tr.find_all("td")] for tr in soup.tbody.find_all("tr")
    ]
    assert [r[1] for r in rows[:-1]] == ["female", "male", "not recorded", "under 18", "18-24"]
    assert rows[1] == ["Sex", "male", "9"] and rows[0][2] == "<5" and rows[4][2] == "[c]"
    assert rows[-1] == ["All", "", "12"]
    assert Report({"numbers": {}, "relations": []}).excluded_profile_table() == ""


def test_a_figure_wider_than_the_page_scrolls_at_its_legible_size(tmp_path):
    from mydirection.reporting.figures import DPI
    from mydirection.reporting.render import WIDE_FIGURE_PX, Report

    wide, narrow = tmp_path / "wide.png", tmp_path / "narrow.png"
    tiny_png(wide, w=WIDE_FIGURE_PX + 600, h=2)
    tiny_png(narrow, w=WIDE_FIGURE_PX, h=2)
    figures = {
        k: {"path": str(p), "caption": "c", "rule": "spec_curve"}
        for k, p in (("figures.wide", wide), ("figures.narrow", narrow))
    }
    report = Report({"numbers": {}, "relations": [], "figures": figures})
    soup = BeautifulSoup(str(report.fig("figures.wide")), "html.parser")
    assert soup.figure["class"] == ["wide"]
    assert soup.img["style"] == f"width: {round((WIDE_FIGURE_PX + 600) * 96 / DPI)}px"
    soup = BeautifulSoup(str(report.fig("figures.narrow")), "html.parser")
    assert not soup.figure.get("class") and not soup.img.get("style")
