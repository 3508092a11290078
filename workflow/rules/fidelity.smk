# Rules of the fidelity stage.
