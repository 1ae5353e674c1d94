"""The model itself: its data, training arguments, training, the compiled predictor and its file format.

Nothing here knows where a run is stored or how a version is chosen: that is
:mod:`coe_template.artifacts` and :mod:`coe_template.registry`.
"""
