"""Curriculum strategies, one file each, registered with ``edco.curriculum.register``.

``edco.curriculum.get_strategy(name)`` imports ``baselines/<name>.py`` first (the other files
only when that does not register the name), so adding a baseline is adding a file here
(README: "Add a baseline"); a file that fails to import breaks only its own strategies.
"""
