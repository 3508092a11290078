# Shared definitions for every rule file.
#
# Conventions (see README "Layout"):
# - a rule's params are derived from the settings objects its script builds
#   (`settings_params`), so changing a setting reruns exactly the rules that read it;
# - a rule's `code` input is its script and every library module the script runs
#   (`code`), so editing a module reruns exactly the rules that run it;
# - every rule has a `log:` under results/logs/; a rule that reports numbers writes
#   results/numbers/<rule>.json and adds it to NUMBERS; final targets go to ALL_TARGETS.
import sys

from mydirection import settings as S
from mydirection.codeinputs import CodeInputs
from mydirection.contract import EXTRACTS
from mydirection.preflight import PreflightError, check as preflight_check
from mydirection.sensitivity.grid import grid_choices

# Fail fast, all at once, before any job is scheduled (raw_dir, key, the ten files and
# their headers, an interrupted earlier run); also the raw checksums and key fingerprint
# the clean rules track (mydirection.preflight).
try:
    PREFLIGHT = preflight_check(
        config, workflow.basedir, main_process=workflow.is_main_process
    )
except PreflightError as err:
    sys.exit(f"ERROR: {err}")
RAW_DIR = PREFLIGHT["raw_dir"]
SYNTHETIC = PREFLIGHT["synthetic"]
# Stamp of the key fingerprint (results/clean/raw/, written by the pre-flight check).
KEY_STAMP = "results/clean/raw/key.fingerprint"

ALL_TARGETS = []
NUMBERS = []
FIGURES = []


# Path of one raw extract (people, supervision, ...), from raw_dir or the synthetic folder.
raw_extract = lambda name: f"{RAW_DIR}/{name}.csv"
# A raw extract as a rule input: by content on real extracts (ancient: the date is ignored,
# its sha256 stamp is an input beside it, see raw_stamp), by date on synthetic ones.
raw_input = lambda name: raw_extract(name) if SYNTHETIC else ancient(raw_extract(name))
# The stamp holding a raw extract's sha256 (real extracts; written by mydirection.preflight).
raw_stamp = lambda name: [] if SYNTHETIC else [f"results/clean/raw/{name}.sha256"]
# A rule's script and the library modules it runs (remembered between runs while none of
# those files changes: mydirection.codeinputs).
CODE_INPUTS = CodeInputs()
code = lambda script: [script, *CODE_INPUTS(script)]
# The config keys (and values) the rule's settings objects read.
settings_params = lambda *classes: S.params(*(c.from_config(config) for c in classes))
# The specification curve's specification names (for the number of batch jobs).
spec_grid_names = lambda grid, headline: list(grid_choices(grid, headline))
