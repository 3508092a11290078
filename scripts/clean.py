"""Rules of the clean stage (workflow/rules/clean.smk), one entry point, by ``params.step``:

- ``extract`` (rule clean_extract): validate, clean, link and pseudonymise one extract (on a
  problem, every problem of every extract is reported at once);
- ``merge`` (rule clean): the cleaning log and the stage's numbers.
"""

from mydirection.cleanstage import extract_step, merge_step
from mydirection.runner import run

STEPS = {"extract": extract_step, "merge": merge_step}


def main(snakemake):
    STEPS[snakemake.params.step](snakemake)


run(main, snakemake)
