from zoo.models.ntm.ntm import NTM
