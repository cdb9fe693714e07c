"""The built-in suites, shipped as package data (``rsbench suite --suite NAME``)."""
