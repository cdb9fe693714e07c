"""Files: rasters, checkpoints, generated fixtures, data preparation from the providers' archives and
atomic writes.
"""
