"""A training run's files: where they are kept (:mod:`.stores`), written and read back verified
(:mod:`.runs`), and carried between registries in one archive (:mod:`.transfer`)."""
