"""The ``rsbench`` command line (``main``) and the commands that are more than a call into the core:
``doctor``, ``demo`` and ``pretrain``.
"""
