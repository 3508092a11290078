# mydirection: evaluation pipeline for the My Direction probation pilot.
# Run:  snakemake --cores all            (synthetic extracts)
#       snakemake --cores all --config raw_dir=/path/to/extracts
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


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
