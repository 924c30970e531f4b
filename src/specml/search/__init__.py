"""Sweeps and searches over spec settings: multirun grids (:mod:`.sweep`), search spaces (:mod:`.space`)
and Optuna studies (:mod:`.tune`, :mod:`.study`, :mod:`.trial`, :mod:`.report`).

Importing this package imports neither torch nor Optuna.
"""
