"""Scene-classification evaluations (AID, ...) as an rsbench plugin."""
