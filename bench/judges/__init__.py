"""Learned networks that metrics and preprocessing rely on (dlib face models, later others).

Everything heavy here is imported lazily, so ``import bench`` works on machines without them.
"""
