"""The run store: runs in one SQLite file, written by the ``store`` plugin, read by ``query``.

``schema`` (the file, its tables, opening it), ``codec`` (a bucket as a row, the sketch BLOB),
``writer`` (the ``store`` plugin), ``query`` (the read API the ``runs`` and ``query`` commands
and an MCP server use). Nothing outside this package imports it except the CLI.
"""
