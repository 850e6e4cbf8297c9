"""The tasks, by name: `training.tasks.get("adding")`."""

from training.tasks.adding import AddingTask
from training.tasks.babi import BabiTask
from training.tasks.copy_memory import CopyMemoryTask
from training.tasks.forecasting import ForecastingTask
from training.tasks.labelling import LabellingTask
from training.tasks.language_model import LanguageModelTask
from training.tasks.latching import LatchingTask
from training.tasks.listops import ListOpsTask
from training.tasks.ntm import NTMTask
from training.tasks.sentiment_trees import SentimentTreesTask
from training.tasks.speech import SpeechTask
from training.tasks.task import Task
from training.tasks.translation import TranslationTask

_TASKS = {
    task.name: task
    for task in (AddingTask(), BabiTask(), CopyMemoryTask(), ForecastingTask(), LabellingTask(), LanguageModelTask(),
                 LatchingTask(), ListOpsTask(), NTMTask(), SentimentTreesTask(),
                 SpeechTask(), TranslationTask())
}


def names():
    return sorted(_TASKS)


def get(name):
    """The task called `name`; an unknown name is a `ValueError` listing the valid ones."""
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {names()}")
    return _TASKS[name]


__all__ = ["AddingTask", "BabiTask", "CopyMemoryTask", "ForecastingTask", "LabellingTask", "LanguageModelTask",
           "LatchingTask", "ListOpsTask", "NTMTask", "SentimentTreesTask", "SpeechTask", "Task", "TranslationTask", "get", "names"]
