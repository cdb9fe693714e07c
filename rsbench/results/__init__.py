"""From rows to what a reader sees: the leaderboard CSV, aggregation over seeds, the report and its plots.
"""
