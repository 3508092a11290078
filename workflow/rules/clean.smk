# Rules of the clean stage: validate every extract at once, then clean each extract in its
# own job (reading only what it needs), then gather the cleaning log and numbers.
#
# Raw extracts are tracked by content: on real extracts each raw input is ancient() (its
# file date is ignored) and its sha256 is a param (PREFLIGHT, see common.smk), so a
# corrected extract copied with an old date (cp -p, rsync -a, unzip) reruns exactly what
# depends on it, and an unchanged one with a new date reruns nothing. The key fingerprint is
# a param too: a key change reruns the cleaning.

CLEAN_NEEDS = {name: ["people"] for name in EXTRACTS if name not in ("people", "staff")}
CLEAN_NEEDS["contacts"] = ["people", "supervision"]
CLEAN_MEM_MB = {"contacts": 3000, "convictions": 3000, "supervision": 2000}


def raw_input(name):
    """A raw extract as a rule input: by content on real extracts, by date on synthetic."""
    return raw_extract(name) if SYNTHETIC else ancient(raw_extract(name))


def clean_inputs(wildcards):
    name = wildcards.extract
    return {
        "raw": raw_input(name),
        "validated": ancient("results/clean/validated.json"),
        **{need: f"results/clean/{need}.parquet" for need in CLEAN_NEEDS.get(name, [])},
    }


rule clean_validate:
    """Check all ten raw extracts against their contract; every problem of every file is
    reported in one message. On synthetic extracts, refuse files the generator did not make.
    """
    input:
        **{name: raw_input(name) for name in EXTRACTS},
        **({"stamp": f"{RAW_DIR}/mess.json"} if SYNTHETIC else {}),
    output:
        validated="results/clean/validated.json",
    log:
        "results/logs/clean_validate.log",
    benchmark:
        "results/benchmarks/clean_validate.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        step="validate",
        raw_dir=config["raw_dir"],
        checksums=PREFLIGHT["checksums"],
    script:
        "../../scripts/clean.py"


rule clean_extract:
    """Clean one extract: fix or exclude what the cleaning rules cover (every row counted),
    link it to the cleaned people (contacts to supervision), pseudonymise crn and the source
    keys, and keep birth_year as the one age fact.
    """
    input:
        unpack(clean_inputs),
    output:
        table="results/clean/{extract}.parquet",
        log_part="results/clean/log/{extract}.parquet",
    log:
        "results/logs/clean_{extract}.log",
    benchmark:
        "results/benchmarks/clean_{extract}.tsv"
    wildcard_constraints:
        extract="|".join(EXTRACTS),
    conda:
        "../../environment.yml"
    resources:
        mem_mb=lambda wildcards: CLEAN_MEM_MB.get(wildcards.extract, 1500),
        runtime=10,
    params:
        step="extract",
        extract=lambda wildcards: wildcards.extract,
        checksum=lambda wildcards: PREFLIGHT["checksums"].get(
            wildcards.extract, "synthetic"
        ),
        raw_dir=config["raw_dir"],
        extract_end_date=config["extract_end_date"],
        pseudonymisation=config["pseudonymisation"],
        key_fingerprint=PREFLIGHT["key_fingerprint"],
    script:
        "../../scripts/clean.py"


rule clean:
    """Gather the per-extract logs into cleaning_log.parquet (received = kept + excluded per
    file) and the stage's numbers.
    """
    input:
        parts=expand("results/clean/log/{extract}.parquet", extract=EXTRACTS),
    output:
        log_table="results/clean/cleaning_log.parquet",
        numbers="results/numbers/clean.json",
    log:
        "results/logs/clean.log",
    benchmark:
        "results/benchmarks/clean.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        step="merge",
        extract_end_date=config["extract_end_date"],
        pseudonymisation=config["pseudonymisation"],
        key_fingerprint=PREFLIGHT["key_fingerprint"],
    script:
        "../../scripts/clean.py"


ALL_TARGETS.extend(expand("results/clean/{extract}.parquet", extract=EXTRACTS))
ALL_TARGETS.extend(rules.clean.output)
NUMBERS.append(rules.clean.output.numbers)
