# Shared definitions for every rule file.
#
# Conventions (see README "Layout"):
# - a rule's params are derived from the settings objects its script builds
#   (`settings_params`), so changing a setting reruns exactly the rules that read it;
# - a rule's `code` input is its script and every library module the script runs
#   (`code`), so editing a module reruns exactly the rules that run it;
# - every rule has a `log:` under results/logs/; a rule that reports numbers writes
#   results/numbers/<rule>.json and adds it to NUMBERS; final targets go to ALL_TARGETS.
from mydirection import settings as S
from mydirection.contract import EXTRACTS
from mydirection.reporting.provenance import library_sources
from mydirection.sensitivity.spec_curve import grid_choices

RAW_DIR = config["raw_dir"] or "data/synthetic"
SYNTHETIC = not config["raw_dir"]

ALL_TARGETS = []
NUMBERS = []
FIGURES = []


# Path of one raw extract (people, supervision, ...), from raw_dir or the synthetic folder.
raw_extract = lambda name: f"{RAW_DIR}/{name}.csv"
# A rule's script and the library modules it runs.
code = lambda script: [script, *library_sources(script)]
# The config keys (and values) the rule's settings objects read.
settings_params = lambda *classes: S.params(*(c.from_config(config) for c in classes))
# The specification curve's specification names (for the number of batch jobs).
spec_grid_names = lambda grid, headline: list(grid_choices(grid, headline))
