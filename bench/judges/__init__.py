"""Learned networks that metrics rely on: SyncNet (LSE), the emotion classifier (EmoAcc), the AU
classifier and rules, Inception (FID), the dlib face embedder (ACD), OpenFace's output; the
harness-trained ones follow the contract of :mod:`bench.judges.store`. (The dlib landmark
detector that preprocessing and metrics share is :mod:`bench.core.landmarks`.)

Everything heavy here is imported lazily, so ``import bench`` works on machines without them.
"""
