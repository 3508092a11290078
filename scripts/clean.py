"""Rules of the clean stage (workflow/rules/clean.smk), one entry point, by ``params.step``:

- ``validate`` (rule clean_validate): every problem of every extract, reported at once;
- ``extract`` (rule clean_extract): clean, link and pseudonymise one extract;
- ``merge`` (rule clean): the cleaning log and the stage's numbers.
"""

from mydirection.cleanstage import extract_step, merge_step, validate_step
from mydirection.runner import run

STEPS = {"validate": validate_step, "extract": extract_step, "merge": merge_step}


def main(snakemake):
    STEPS[snakemake.params.step](snakemake)


run(main, snakemake)
