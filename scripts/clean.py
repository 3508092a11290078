"""Rule clean: validate, clean and pseudonymise the ten raw extracts."""

from mydirection.clean import clean_extracts, load_key, write_tables
from mydirection.contract import EXTRACTS
from mydirection.numbers import number, write_numbers
from mydirection.runner import run


def main(snakemake):
    params = snakemake.params
    settings = dict(params.pseudonymisation or {})
    key = load_key(settings, synthetic=not params.raw_dir)
    paths = {name: snakemake.input[name] for name in EXTRACTS}
    tables, log = clean_extracts(paths, params.extract_end_date, key)
    outputs = {name: snakemake.output[name] for name in EXTRACTS}
    outputs["cleaning_log"] = snakemake.output.log_table
    write_tables(tables, log, outputs)

    def total(action):
        return int(log.loc[log["action"] == action, "rows"].sum())

    write_numbers(
        snakemake.output.numbers,
        snakemake,
        {
            "cleaning.rows_received": number(total("received"), "count", "rows"),
            "cleaning.rows_kept": number(total("kept"), "count", "rows"),
            "cleaning.rows_excluded": number(total("excluded"), "count", "rows"),
            "cleaning.rows_fixed": number(total("fixed"), "count", "rows"),
            "cleaning.n_people": number(len(tables["people"]), "count", "people"),
        },
        config_keys={
            "extract_end_date": params.extract_end_date,
            "pseudonymisation.key_env": settings.get("key_env"),
        },
    )


run(main, snakemake)
