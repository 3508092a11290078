# Rules of the synthetic stage: the embedded default data (used when raw_dir is null).
from pathlib import Path

import yaml

SYNTHETIC_DIR = "data/synthetic"
# The generator package (a change to the model regenerates the data).
SYNTHETIC_SOURCES = sorted(
    str(p) for p in Path("src/mydirection/synthetic").glob("*.py")
)


# The generator config, loaded here and passed as params so that changing it reruns the
# generator (and only what depends on the data).
SYNTHETIC_CONFIG = Path(config["synthetic"])
SYNTHETIC_SETTINGS = (
    (yaml.safe_load(SYNTHETIC_CONFIG.read_text()) or {})
    if SYNTHETIC_CONFIG.is_file()
    else {}
)
SYNTHETIC_SIZE = SYNTHETIC_SETTINGS.get("n_comparator_pool", 5000)


rule synthetic:
    input:
        config=config["synthetic"],
        generator=SYNTHETIC_SOURCES,
        schema="workflow/schemas/synthetic.schema.yaml",
        code=code("scripts/synthetic.py"),
    output:
        extracts=expand(f"{SYNTHETIC_DIR}/{{extract}}.csv", extract=EXTRACTS),
        truth=f"{SYNTHETIC_DIR}/truth.json",
        mess=f"{SYNTHETIC_DIR}/mess.json",
    log:
        "results/logs/synthetic.log",
    benchmark:
        "results/benchmarks/synthetic.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000 + 2 * SYNTHETIC_SIZE // 1000,
        runtime=5 + SYNTHETIC_SIZE // 100_000,
    params:
        generator=SYNTHETIC_SETTINGS,
        seed=config["seed"],
    script:
        "../../scripts/synthetic.py"
