"""Training-only code: fits and settings that ``eval/train_reranker.py`` and friends use to make qa's models.

The runtime (``qa ask``, ``qa serve``) never imports this package; it only reads what training wrote.
"""
