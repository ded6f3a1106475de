"""The pure core: models, the compatibility matrix and the solver. No I/O, no clock."""
