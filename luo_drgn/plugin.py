"""drgn plugin: placeholder until the %luo commands land."""


def drgn_prog_set(prog):  # noqa: D103
    pass
