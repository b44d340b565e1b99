"""The strategy workload: candles → indicators → fuzzy memberships → features → labels → time split.

The data and feature modules here are numpy/pandas only (no torch): ``candles``, ``schema``,
``indicators``, ``fuzzy``, ``features``, ``labels``, ``splits``, ``sample_data``.
"""
