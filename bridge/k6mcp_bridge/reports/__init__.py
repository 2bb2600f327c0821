"""The report plugins: ``report`` (one offline HTML file with time series) and ``junit``
(JUnit XML for CI)."""
