"""Native (Cython) audio core: μ-law codec, frame energy, VAD / EOU / barge-in detectors, 20 ms framing.

No I/O and no clock reads anywhere in this package: callers pass frames and times in.
"""
