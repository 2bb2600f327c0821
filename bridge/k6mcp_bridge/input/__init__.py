"""Bytes and lines: stdin, files, gzip, following a file k6 writes, checkpoints."""
