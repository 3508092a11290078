# Rules of the clean stage.


rule clean:
    """Validate the raw extracts against their contract, fix or exclude what the cleaning
    rules cover (every row counted in cleaning_log.parquet), pseudonymise crn -> person_id.
    """
    input:
        **{name: raw_extract(name) for name in EXTRACTS},
        code=code("scripts/clean.py"),
    output:
        **{name: f"results/clean/{name}.parquet" for name in EXTRACTS},
        log_table="results/clean/cleaning_log.parquet",
        numbers="results/numbers/clean.json",
    log:
        "results/logs/clean.log",
    benchmark:
        "results/benchmarks/clean.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        raw_dir=config["raw_dir"],
        extract_end_date=config["extract_end_date"],
        pseudonymisation=config["pseudonymisation"],
    script:
        "../../scripts/clean.py"


ALL_TARGETS.extend(rules.clean.output)
NUMBERS.append(rules.clean.output.numbers)
