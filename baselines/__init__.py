"""Curriculum strategies, one file each, registered with ``edco.curriculum.register``.

Every module in this package is imported when a strategy is first looked up, so adding a
baseline is adding a file here (README: "Add a baseline").
"""
