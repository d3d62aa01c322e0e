"""The parts of ``core.train``: schedule, optimizer/DeepSpeed setup, run directory, data, loop, pretraining.

Nothing here is imported by the model or data libraries; ``core.train`` is the entry point.
"""
