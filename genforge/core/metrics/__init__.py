"""Metric helpers every modality shares: the metric-row format (:mod:`.rows`), the nearest-neighbour
search behind memorisation and privacy metrics (:mod:`.neighbours`) and per-step timings (:mod:`.timing`).

Nothing here knows about images or tables; each modality's ``metrics`` package builds on these.
"""
