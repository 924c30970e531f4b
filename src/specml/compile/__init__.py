"""Words -> specs: a goal in plain words and a table become a model and trainer spec, offline."""
