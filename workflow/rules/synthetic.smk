# Rules of the synthetic stage.
