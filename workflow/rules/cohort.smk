# Rules of the cohort stage.
