"""One evaluation, from run spec to leaderboard row: the spec, the config finalising step and the run's
identity, preparing and executing (also over several processes), resuming, devices, scoring
predictions made elsewhere, and provenance.
"""
