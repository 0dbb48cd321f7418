"""qa's benchmarks: one module per concern, each run from the repository root with ``python -m benchmarks.NAME``.

Shared helpers live once in :mod:`benchmarks.common`; each results page (``RESULTS.md``, ``EMBED-ONNX.md``, ...)
is rendered from the JSON committed beside it, into which every run merges the sections it measured.

Run them from the repository root: ``python -m`` then finds this package first on ``sys.path`` (pysbd, a test
dependency, also installs a top-level package named ``benchmarks`` into site-packages).
"""
