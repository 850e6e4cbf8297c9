from zoo.models.forecaster.forecaster import Forecaster
