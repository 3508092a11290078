# Rules of the clean stage: each extract is validated and cleaned in its own job (reading
# only what it needs; the first job that finds a problem reports every problem of every
# extract), then the cleaning log and numbers are gathered.
#
# Raw extracts are tracked by content: on real extracts each raw input is ancient() (its
# file date is ignored) and a stamp file holding its sha256 is an input (written by the
# pre-flight check only when the checksum changes, see common.smk and mydirection.preflight),
# so a corrected extract copied with an old date (cp -p, rsync -a, unzip) reruns exactly
# what depends on it, and an unchanged one with a new date reruns nothing. The key
# fingerprint has its stamp too: a key change reruns the cleaning.

CLEAN_NEEDS = {name: ["people"] for name in EXTRACTS if name not in ("people", "staff")}
CLEAN_NEEDS["contacts"] = ["people", "supervision"]
CLEAN_MEM_MB = {"contacts": 3000, "convictions": 3000, "supervision": 2000}


rule clean_extract:
    """Validate and clean one extract: fix or exclude what the cleaning rules cover (every row counted),
    link it to the cleaned people (contacts to supervision), pseudonymise crn and the source
    keys, and keep birth_year as the one age fact.
    """
    input:
        unpack(
            lambda wildcards: {
                "raw": raw_input(wildcards.extract),
                "stamp": raw_stamp(wildcards.extract),
                "key": KEY_STAMP,
                "code": code("scripts/clean.py"),
                **{
                    need: f"results/clean/{need}.parquet"
                    for need in CLEAN_NEEDS.get(wildcards.extract, [])
                },
            }
        ),
    output:
        table="results/clean/{extract}.parquet",
        log_part="results/clean/log/{extract}.parquet",
    log:
        "results/logs/clean_{extract}.log",
    benchmark:
        "results/benchmarks/clean_{extract}.tsv"
    wildcard_constraints:
        extract="|".join(EXTRACTS),
    # the extracts the cohort reads first, the largest (by memory budget) first: they lead to
    # matching and every analysis after it; contacts and the fidelity extracts can wait
    priority:
        lambda wildcards: (
            CLEAN_MEM_MB.get(wildcards.extract, 1500)
            if f"results/clean/{wildcards.extract}.parquet" in rules.cohort.input
            else 0
        )
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
        raw_files={name: raw_extract(name) for name in EXTRACTS},
    script:
        "../../scripts/clean.py"


rule clean:
    """Gather the per-extract logs into cleaning_log.parquet (received = kept + excluded per
    file) and the stage's numbers.
    """
    input:
        parts=expand("results/clean/log/{extract}.parquet", extract=EXTRACTS),
        code=code("scripts/clean.py"),
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
