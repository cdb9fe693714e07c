"""What a run attaches to mmengine's runner: the inference-mode test loop, guards, compute-option hooks,
the frozen-feature cache, progress bars, experiment tracking and the JSON entry-list dataset.
"""
