"""Layout planners: a prompt becomes text boxes (a :class:`textgen.layout.Layout`)."""
