# Rules of the clean stage.
