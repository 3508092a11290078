# Rules of the outcomes stage.
