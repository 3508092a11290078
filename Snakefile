# mydirection: evaluation pipeline for the My Direction probation pilot.
# Run:  snakemake --cores all            (synthetic extracts)
#       snakemake --cores all --config raw_dir=/path/to/extracts
import sys

from snakemake.utils import min_version

from mydirection.config import check_config
from mydirection.errors import ConfigError
from mydirection.settings import SCHEMA_PATH, with_defaults

min_version("9.0")


configfile: "config/config.yaml"


try:
    config.update(with_defaults(config))  # the schema's defaults: the only defaults
    check_config(config, SCHEMA_PATH)
except ConfigError as err:
    sys.exit(f"ERROR: {err}")  # one message, no traceback


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/clean.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/matching.smk"
include: "workflow/rules/outcomes.smk"
include: "workflow/rules/effects.smk"
include: "workflow/rules/fidelity.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        ALL_TARGETS,


onsuccess:
    from mydirection.reporting.run_summary import run_summary

    for line in run_summary():
        print(line)
