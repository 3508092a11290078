# Rules of the matching stage.
