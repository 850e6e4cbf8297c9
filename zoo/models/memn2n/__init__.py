from zoo.models.memn2n.memn2n import MemN2N
