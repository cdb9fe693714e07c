"""Many evaluations: suites as data, running an expanded suite, worker processes and the executors.
"""
