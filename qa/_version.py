"""qa's version, in a module of its own: every module may import it without importing the package's public API."""

__version__ = "0.1.0"
