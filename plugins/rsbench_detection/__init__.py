"""Object-detection evaluations (DIOR, DIOR-R, SARDet-100K, ...) as an rsbench plugin:
official-layout readers and fixtures, horizontal (mmdet) and oriented (mmrotate) detector tasks."""
