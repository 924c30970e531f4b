"""The registry's tables, one module per family: specs, runs (with evaluations), jobs, plans.

Each class takes a :class:`specml.track.store.Store` and turns rows into frozen dataclasses; none
validates spec files (that is :mod:`specml.track.register`) and none imports torch.
"""
