# Rules of the sensitivity stage.
