"""The ``--listen`` source: an HTTP receiver whose request bodies become records."""
