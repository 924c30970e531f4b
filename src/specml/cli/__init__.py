"""The ``specml`` command line (typer + rich), a thin layer over the Python API."""
