"""Rule clean: validate, clean and pseudonymise the ten raw extracts."""

from mydirection.clean import clean_extracts, load_key, parquet_writer
from mydirection.contract import EXTRACTS
from mydirection.numbers import number, write_numbers
from mydirection.runner import run


def main(snakemake):
    params = snakemake.params
    settings = dict(params.pseudonymisation or {})
    key = load_key(settings, synthetic=not params.raw_dir)
    paths = {name: snakemake.input[name] for name in EXTRACTS}
    outputs = {name: snakemake.output[name] for name in EXTRACTS}
    outputs["cleaning_log"] = snakemake.output.log_table
    write = parquet_writer(outputs)
    # each cleaned table is written as soon as it is ready (one extract in memory at a time);
    # on a UserError the runner removes whatever was written
    _, log = clean_extracts(paths, params.extract_end_date, key, write=write)
    write("cleaning_log", log)

    def total(action, file=None):
        rows = log[(log["action"] == action) & ((log["file"] == file) if file else True)]
        return int(rows["rows"].sum())

    write_numbers(
        snakemake.output.numbers,
        snakemake,
        {
            "cleaning.rows_received": number(total("received"), "count", "rows"),
            "cleaning.rows_kept": number(total("kept"), "count", "rows"),
            "cleaning.rows_excluded": number(total("excluded"), "count", "rows"),
            "cleaning.row_fixes": number(
                total("fixed"),
                "count",
                "rows",
                label="rows fixed, summed over the fixing rules (code_normalised, date_format)",
            ),
            "cleaning.n_people": number(total("kept", "people"), "count", "people"),
        },
        config_keys={
            "extract_end_date": params.extract_end_date,
            "pseudonymisation.key_env": settings.get("key_env"),
        },
    )


run(main, snakemake)
