"""Rule subgroups: the rate difference within subgroups (exploratory), with Holm-adjusted
p-values, heterogeneity tests and within-level balance, and the forest plot."""

from mydirection import pipeline
from mydirection.effects.subgroup_stage import CAPTION, analyse_subgroups
from mydirection.runner import run
from mydirection.settings import SubgroupSettings


def main(job):
    spec, sample, pairs = pipeline.rule_inputs(job)
    result = job.call(analyse_subgroups, sample, pairs, spec, job.settings(SubgroupSettings))
    job.write("table", result.table, "subgroups")
    job.write("heterogeneity", result.heterogeneity, "subgroup_heterogeneity")
    job.report(result.numbers())
    job.figure("subgroups_forest", result.plot, CAPTION, derived_from=["reoffending.n_treated"])


run(main, snakemake)
