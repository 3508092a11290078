# Shared definitions for every rule file.
#
# Conventions (see README "Layout"):
# - each rule passes the config section(s) it uses as `params:` (so changing a setting reruns
#   exactly the rules that use it) and has a `log:` under results/logs/;
# - a rule that reports numbers writes results/numbers/<rule>.json and adds it to NUMBERS;
#   final targets are added to ALL_TARGETS.
from mydirection.contract import EXTRACTS

RAW_DIR = config["raw_dir"] or "data/synthetic"
SYNTHETIC = not config["raw_dir"]

ALL_TARGETS = []
NUMBERS = []
FIGURES = []

# Path of one raw extract (people, supervision, ...), from raw_dir or the synthetic folder.
raw_extract = lambda name: f"{RAW_DIR}/{name}.csv"
