"""coffeetrace: per-tree coffee traceability backend."""

__version__ = "0.1.0"
