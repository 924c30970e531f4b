"""Model spec -> nn.Module: the allow-list, specml's layers, the builder and the dry-run checks."""

from specml.graph.builder import SpecModel, build_model

__all__ = ["SpecModel", "build_model"]
