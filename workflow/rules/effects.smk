# Rules of the effects stage.
