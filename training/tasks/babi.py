"""bAbI question answering with an End-to-End Memory Network (Sukhbaatar, Szlam, Weston & Fergus 2015).

Data: `--data_dir=DIR` reads the bAbI layout (`qaN_<name>_train.txt`, `qaN_<name>_test.txt`; `training.data.babi`);
without it the task trains on generated stories (QA1, QA2 and QA6, `training.data.babi_generator.generated_splits`,
`train_questions` and `test_questions` per task, seeded by the run's seed). `tasks` picks the task numbers (default
None: every task found, or 1, 2 and 6 when generated). `validation_fraction` of each task's training stories (10%, as
the paper) is the validation split.

`joint` (default true): one model over every chosen task. `joint=false` is the paper's one model per task, one task per
run: `tasks` must then name exactly one task (`--override=joint=false,tasks=[2]`), and a run per task covers several.
The model is `model` (default None: `memn2n_babi_joint`, d = 50, when joint, `memn2n_babi`, d = 20, otherwise), with
`model_options` replacing its preset arguments.

Encoding: a question's story is its statements oldest first, the last `memory_size` (50, the paper's) kept. Every
sentence is padded with id 0 to the longest sentence of the data, the query to the longest query, and the story to
as many slots as the longest story needs, plus room for the random noise below (at most `memory_size`): inputs are
`(story [N, slots, words], query [N, query words])`, stories left-aligned (empty slots trail). Ids come from the
vocabulary of the training split: `<pad>` 0, `<unk>` 1 (a word only validation or test hold), then every token and
every answer string of the training examples, sorted (`training.data.babi.vocabulary`). The answer is a word of that
vocabulary, as in the paper (â = softmax(W u), W over the vocabulary), so targets are `(answer id, task number)`;
the task number only groups the metrics.

Random noise (§4.1, "we add 10% of empty memories to the stories at random positions"; `random_noise`, a fraction,
0 = off): in training only, each story of a batch gets a number of empty slots drawn uniformly from
0 .. ceil(fraction * its sentences) (as the authors' code draws it), no more than its free slots, at random
positions between its sentences, which keep their order; the temporal encoding counts them as time steps. The draws
are stateless, seeded by (seed, the batch's index in the run's stream, the input pipeline), so a resumed run sees the
noise that the uninterrupted run would have.

Linear start (§4.2, `linear_start`): the model starts with its softmaxes over the memory removed (the final one
stays); after each epoch's validation, the first time the validation loss does not fall below the best so far, they
are put back, and training goes on. The switch is the model's non-trainable `linear_start_switch`, and the best
validation loss is the trainer's checkpointed best (the task monitors the loss), so a run killed and resumed decides
as the uninterrupted one would. `linear_start_epochs` (default None: the paper's rule) ends it after that many epochs
instead, whatever the validation loss, as the authors' code does (MemN2N-babi-matlab: `ls_nepochs` 20 per task, 30
joint). That code also runs linear start at half the learning rate (0.005) and then starts the main schedule afresh
(at 0.005 too, since `config.init_lrate` is set to 0.01/2 when linear start is on); neither is done here: the
schedule below runs once, over all epochs. On generated QA1, QA2 and QA6 (joint, seed 0) the paper's rule ends linear
start after epoch 4 or 5, and 30 epochs of it gave no better test errors (QA1 0.9%, QA2 35.8%, QA6 6.2%, against
0.3%, 32.5%, 4.4%), so the default stays the paper's.

The model's softmaxes include the memory's empty slots (`empty_memories` of the `memn2n_babi*` presets: each of the
memory_size - n empty slots of a story of n sentences scores 0 and reads 0, as the authors' fixed-size memory of nil
words does). It is what lets the yes/no task be learned: the answer is linear in the reads, and a softmax over the
sentences alone sums to 1 whatever matches, while one that also covers empty memories reads less when no sentence
matches the question well. Without it QA6 stayed at chance (49.3% test error, about 63% training accuracy, joint,
seed 0); with it, 4.4%. Trained alone (`joint=false,tasks=[6]`) on 1,000 generated questions QA6 still stays near
chance, with or without linear start or a fixed 20 epochs of it; trained with QA1 (`tasks=[1, 6]`, 60 epochs) it
reaches 5.3%, so QA1's questions seem to be what teaches the model to find an actor's last move here.

Optimization (the paper's §4.2 recipe, preset `memn2n`): SGD, 100 epochs, batches of 32, learning rate halved every
25 epochs, gradients clipped to norm 40. The paper sums the loss over a batch; the trainer averages it, so the
learning rate is 0.01 x 32 = 0.32 and the clip 40 / 32 = 1.25, the same steps. `memn2n_small` is a CPU-sized preset
for tests (Adam, fewer epochs, d = 20).

Metrics: `accuracy` (answers right, per example), `error_N` (1 - accuracy on task N), `mean_error` (over the tasks)
and `failed_tasks` (how many have error > 5%, the paper's criterion). `training.evaluate` reports them on the test
split.
"""

import functools
import json
import math
import os
import tempfile

import numpy as np
import tensorflow as tf

import zoo
from training.data import babi as babi_data
from training.data import babi_generator
from training.tasks.task import Task

PAD, UNK = "<pad>", "<unk>"
GENERATED_TASKS = tuple(sorted(babi_generator.NAMES))
# The paper's criterion of a failed task: error above 5%.
FAILED_ERROR = 0.05

_COMMON = {
    "data_dir": None,
    "tasks": None,
    "joint": True,
    "train_questions": 1000,  # per generated task: the "1k" setting
    "test_questions": 1000,
    "validation_fraction": 0.1,
    "memory_size": 50,
    "model": None,
    "model_options": {},
    "random_noise": 0.1,
    "linear_start": True,
    "linear_start_epochs": None,
}

PRESETS = {
    # Sukhbaatar et al. 2015, §4.2 (see the module docstring for the rescaled learning rate and clip).
    "memn2n": {
        **_COMMON,
        "batch_size": 32,
        "epochs": 100,
        "optimizer": "sgd",
        "learning_rate": 0.32,
        "learning_rate_decay_epochs": 25,
        "learning_rate_decay_factor": 0.5,
        "clip_global_norm": 1.25,
    },
    # CPU-sized, for tests: Adam converges in a few epochs on one generated task.
    "memn2n_small": {
        **_COMMON,
        "model": "memn2n_babi",
        "batch_size": 32,
        "epochs": 30,
        "optimizer": "adam",
        "learning_rate": 0.01,
        "clip_global_norm": 1.25,
    },
}


class BabiTask(Task):
    name = "babi"
    presets = PRESETS
    default_preset = "memn2n"
    # The loss: linear start compares the validation loss with the best so far, which the trainer keeps for this.
    monitor = ("loss", "min")

    def check_config(self, config):
        super().check_config(config)
        tasks = config["tasks"]
        if tasks is not None and (
            not isinstance(tasks, (list, tuple)) or not tasks
            or not all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in tasks)
            or len(set(tasks)) != len(tasks)
        ):
            raise ValueError(f"tasks must be None (every task found) or a list of distinct task numbers like [1, 2, 6], "
                             f"got {tasks!r}")
        if config["data_dir"] is None and tasks is not None and not set(tasks) <= set(GENERATED_TASKS):
            raise ValueError(f"without --data_dir the stories are generated, for tasks {list(GENERATED_TASKS)} only; "
                             f"got tasks={tasks!r}")
        for key in ("joint", "linear_start"):
            if not isinstance(config[key], bool):
                raise ValueError(f"{key} must be true or false, got {config[key]!r}")
        epochs = config.get("linear_start_epochs")
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            raise ValueError(f"linear_start_epochs must be None (linear start ends when the validation loss stops "
                             f"falling) or a positive number of epochs, got {epochs!r}")
        if not config["joint"] and (tasks is None or len(tasks) != 1):
            raise ValueError(f"joint=false trains one model per task: name exactly one task per run, e.g. "
                             f"--override=joint=false,tasks=[1]; got tasks={tasks!r}")
        noise = config["random_noise"]
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise <= 1:
            raise ValueError(f"random_noise must be a fraction in [0, 1] (0 = off), got {noise!r}")
        fraction = config["validation_fraction"]
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ValueError(f"validation_fraction must be a number in (0, 1), got {fraction!r}")
        for key in ("train_questions", "test_questions", "memory_size"):
            if isinstance(config[key], bool) or not isinstance(config[key], int) or config[key] < 1:
                raise ValueError(f"{key} must be a positive int, got {config[key]!r}")
        if not isinstance(config["model_options"], dict):
            raise ValueError(f"model_options must be a dict of model arguments, got {config['model_options']!r}")

    # Data.

    def data(self, config):
        """The encoded data of this config: a `BabiData` (cached)."""
        return _data(json.dumps({key: config.get(key) for key in _DATA_KEYS}, sort_keys=True))

    def split_data(self, config):
        """{split: ((story [N, slots, words], query [N, words]), (answer [N], task [N])), int32 arrays}."""
        return self.data(config).splits

    def steps_per_epoch(self, config, global_batch_size):
        if config.get("steps_per_epoch"):
            return int(config["steps_per_epoch"])
        size = len(self.split_data(config)["train"][1][0])
        if size < global_batch_size:
            raise ValueError(f"the training split ({size} questions) is smaller than one global batch "
                             f"({global_batch_size}); add questions or lower batch_size")
        return size // global_batch_size

    def dataset(self, config, split, batch_size, *, input_context=None, skip_batches=0, pad_to_multiple=None):
        """As `Task.dataset`; training batches get the random noise (module docstring)."""
        data = super().dataset(config, split, batch_size, input_context=input_context, skip_batches=skip_batches,
                               pad_to_multiple=pad_to_multiple)
        if split != "train" or not config["random_noise"]:
            return data
        pipeline = input_context.input_pipeline_id if input_context is not None else 0
        pipelines = input_context.num_input_pipelines if input_context is not None else 1
        fraction, seed = float(config["random_noise"]), config["seed"]

        def noised(index, batch):
            (story, query), targets, weights = batch
            batch_seed = tf.stack([tf.constant(seed, tf.int64), index * pipelines + pipeline])
            return (add_random_noise(story, fraction, batch_seed), query), targets, weights

        return data.enumerate(start=skip_batches).map(noised)

    def input_features(self, config):
        return None

    def example_features(self, config):
        return None

    # Model, loss, metrics.

    def model_name(self, config):
        if config["model"] is not None:
            return config["model"]
        return "memn2n_babi_joint" if config["joint"] else "memn2n_babi"

    def model_head(self, config):
        return {"vocab_size": len(self.data(config).vocabulary), "memory_size": config["memory_size"],
                "linear_start": config["linear_start"]}

    def build_model(self, config):
        return zoo.models.get(self.model_name(config), **{**config["model_options"], **self.model_head(config)})

    def after_validation(self, config, model, epoch, metrics, best):
        """Linear start ends after `linear_start_epochs` epochs when set (the authors' code), else at the first epoch
        whose validation loss is not below the best before it (the paper's rule)."""
        if not config["linear_start"] or float(model.linear_start_switch.numpy()) < 0.5:
            return
        epochs = config.get("linear_start_epochs")
        if (epoch >= epochs) if epochs is not None else (metrics["loss"] >= best):
            model.set_linear_start(False)

    def loss(self, config, targets, predictions):
        answers, _ = targets
        return tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(answers, tf.int32), logits=tf.cast(predictions, tf.float32)
        )

    def metrics(self, config, targets, predictions):
        """Per example: `accuracy`; per task N, `correct_N` (right and of task N) and `share_N` (of task N), whose
        means' ratio `summarize` turns into the task's error."""
        answers, tasks = targets
        correct = tf.cast(tf.equal(tf.argmax(predictions, axis=-1, output_type=tf.int32), tf.cast(answers, tf.int32)),
                          tf.float32)
        result = {"accuracy": correct}
        for task in self.data(config).tasks:
            of_task = tf.cast(tf.equal(tf.cast(tasks, tf.int32), task), tf.float32)
            result[f"correct_{task}"] = correct * of_task
            result[f"share_{task}"] = of_task
        return result

    def summarize(self, config, means):
        """`error_N` per task, `mean_error` and `failed_tasks` (error > 5%) from the per-task means."""
        if not means:
            return means
        result = {key: value for key, value in means.items() if not key.startswith(("correct_", "share_"))}
        errors = []
        for task in self.data(config).tasks:
            share = means.get(f"share_{task}", 0.0)
            if share > 0:
                errors.append(1.0 - means[f"correct_{task}"] / share)
                result[f"error_{task}"] = errors[-1]
        if errors:
            result["mean_error"] = float(np.mean(errors))
            result["failed_tasks"] = float(sum(error > FAILED_ERROR for error in errors))
        return result

    def chance_levels(self, config):
        return {"accuracy": self.data(config).majority_accuracy}

    # Export.

    def serving_module(self, config, model):
        return BabiServing(self, config, model)

    def warmup_inputs(self, config, count=2):
        """The first `count` test questions, their stories as text (one sentence a line)."""
        examples = self.data(config).examples["test"][:count]
        return {"story": tf.constant([story_text(example.story) for example in examples]),
                "question": tf.constant([" ".join(example.query) for example in examples])}


def add_random_noise(story, fraction, seed):
    """Empty slots inserted at random positions of each story (Sukhbaatar et al. 2015, §4.1).

    Args:
        story: [batch, slots, words] int ids, each story's sentences left-aligned (oldest first, empty slots after).
        fraction: each story of n sentences gets k empty slots, k uniform in 0 .. ceil(fraction * n), at most
            slots - n.
        seed: int64 [2], the stateless seed of the draws.

    Returns:
        [batch, slots, words]: each story's n sentences in their order, spread with the k empty slots over its first
        n + k slots at random; the later slots empty.
    """
    story = tf.convert_to_tensor(story)
    slots = tf.shape(story)[1]
    filled = tf.reduce_any(tf.not_equal(story, 0), axis=-1)
    n = tf.reduce_sum(tf.cast(filled, tf.int32), axis=1)  # [batch]
    count_seed, place_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    most = tf.cast(tf.math.ceil(fraction * tf.cast(n, tf.float32)), tf.int32)
    draw = tf.random.stateless_uniform(tf.shape(n), count_seed)
    blanks = tf.minimum(tf.cast(draw * tf.cast(most + 1, tf.float32), tf.int32), slots - n)
    blanks = tf.minimum(blanks, most)  # draw < 1, but not when float rounding reaches most + 1
    used = n + blanks
    positions = tf.range(slots)[None, :]
    valid = positions < used[:, None]
    # The blanks are the `blanks` used slots with the lowest random scores.
    scores = tf.where(valid, tf.random.stateless_uniform(tf.shape(filled), place_seed), 2.0)
    ranks = tf.argsort(tf.argsort(scores, axis=1, stable=True), axis=1, stable=True)
    real = valid & (ranks >= blanks[:, None])
    source = tf.where(real, tf.cumsum(tf.cast(real, tf.int32), axis=1) - 1, 0)
    moved = tf.gather(story, source, batch_dims=1)
    return tf.where(real[:, :, None], moved, tf.zeros_like(moved))


class BabiData:
    """The examples of a config, read or generated, and their encoding (module docstring).

    Attributes:
        examples: {split: [training.data.babi.Example]}.
        tasks: the task numbers, sorted.
        vocabulary: the tokens by id (`<pad>` 0, `<unk>` 1, then the training tokens and answers, sorted).
        splits: {split: ((story, query), (answer, task))}, int32 arrays.
        majority_accuracy: the test accuracy of always answering the training split's most common answer.
    """

    def __init__(self, config):
        if config["data_dir"] is not None:
            self.examples = babi_data.read_babi(config["data_dir"], config["tasks"], config["validation_fraction"],
                                                config["seed"])
        else:
            self.examples = babi_generator.generated_splits(
                config["tasks"] or GENERATED_TASKS, config["seed"], config["train_questions"], config["test_questions"],
                config["validation_fraction"],
            )
        for split in babi_data.SPLITS:
            if not self.examples[split]:
                raise ValueError(f"the {split} split holds no question; add stories or change validation_fraction "
                                 f"({config['validation_fraction']})")
        self.tasks = sorted({example.task for example in self.examples["train"]})
        self.vocabulary = [PAD, UNK] + babi_data.vocabulary(self.examples["train"])
        self.ids = {token: index for index, token in enumerate(self.vocabulary)}
        memory_size = config["memory_size"]
        every = [example for split in babi_data.SPLITS for example in self.examples[split]]
        longest_story = max(min(len(example.story), memory_size) for example in every)
        self.slots = min(memory_size, longest_story + math.ceil(config["random_noise"] * longest_story))
        self.words = max(len(sentence) for example in every for sentence in example.story[-memory_size:])
        self.query_words = max(len(example.query) for example in every)
        self.memory_size = memory_size
        self.splits = {split: self.encode(self.examples[split]) for split in babi_data.SPLITS}
        answers = [example.answer for example in self.examples["train"]]
        common = max(set(answers), key=answers.count)
        self.majority_accuracy = float(np.mean([example.answer == common for example in self.examples["test"]]))

    def encode(self, examples):
        """((story, query), (answer, task)) int32 arrays of `examples` (module docstring)."""
        story = np.zeros((len(examples), self.slots, self.words), np.int32)
        query = np.zeros((len(examples), self.query_words), np.int32)
        for row, example in enumerate(examples):
            for slot, sentence in enumerate(example.story[-self.memory_size:]):
                story[row, slot, :len(sentence)] = self.token_ids(sentence)
            query[row, :len(example.query)] = self.token_ids(example.query)
        answer = np.array(self.token_ids([example.answer for example in examples]), np.int32)
        task = np.array([example.task for example in examples], np.int32)
        return (story, query), (answer, task)

    def token_ids(self, tokens):
        return [self.ids.get(token, 1) for token in tokens]


_DATA_KEYS = ("data_dir", "tasks", "train_questions", "test_questions", "validation_fraction", "memory_size",
              "random_noise", "seed")


@functools.lru_cache(maxsize=4)
def _data(config_json):
    return BabiData(json.loads(config_json))


def story_text(sentences):
    """A story as `BabiServing` reads it: its sentences (token lists) joined by spaces, one a line. Tokenising the
    text again (`training.data.babi.tokenize`) gives back the tokens."""
    return "\n".join(" ".join(sentence) for sentence in sentences)


# `training.data.babi.tokenize` in RE2 (TensorFlow's regex ops): Python's \w on str is any letter or number and "_",
# its \s the Unicode white space; RE2's \w and \s are ASCII only, so both are spelled out.
_WORD = r"\p{L}\p{N}_"
_SPACE = r"\t\n\x{0b}\f\r\x{1c}-\x{1f}\x{85}\p{Z}"


def tokenize_in_graph(text):
    """`training.data.babi.tokenize` with TensorFlow core ops: lower case (per code point), then runs of word
    characters and every other non-space character as tokens of their own.

    Args:
        text: tf.string [n].

    Returns:
        tf.string RaggedTensor [n, (tokens)]; a text of white space alone has no token.
    """
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, f"([{_WORD}]+|[^{_WORD}{_SPACE}])", r" \1 ")
    text = tf.strings.regex_replace(text, f"[{_SPACE}]+", " ")
    tokens = tf.strings.split(tf.strings.strip(text), sep=" ")
    return tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, ""))


class BabiServing(tf.Module):
    """The signature of an exported memory network, with the tokenisation and the vocabulary tables it uses.

    serving_default(story: string [batch], question: string [batch]) -> with M = the config's `memory_size` and K
        the model's hops:
        answer: string [batch], the most probable word of the vocabulary (the argmax of the model's logits);
        probability: float [batch], its softmax probability;
        attention: float [batch, K, M], row k the attention of hop k over the kept sentences, oldest first (slot i
            is `memory[:, i]`; zeros after the `sentences` kept);
        memory: string [batch, M], the kept sentences as given (white space trimmed), oldest first, "" after;
        sentences: int32 [batch], how many sentences were kept;
        dropped: int32 [batch], how many older sentences did not fit the memory: kept sentence i is sentence
            `dropped + i` of the story (counting its non-blank lines from 0).

    A story is one sentence per line ("\\n"; "\\r\\n" and "\\r" read as "\\n", blank lines skipped), a sentence and
    the question tokenised as in training (`training.data.babi.tokenize`: lower case, runs of word characters, every
    other non-space character a token of its own; bytes that are not UTF-8 read as U+FFFD), each token looked up in
    the training vocabulary (a word it lacks is `<unk>`, id 1). As in training, a story longer than the memory keeps
    its last M sentences (`dropped` says how many went). A sentence or a question may have any number of words: the
    sentence encoding sums over the words (the position encoding's weights depend on the sentence's own length), so
    longer sentences than training saw are encoded as the model defines them. A story without a sentence, or a
    question without a token, fails the request with INVALID_ARGUMENT naming the input; a server that batches
    requests fails the requests batched with it too (as for every signature that checks its inputs).

    Every output has the batch dimension first and a shape that does not depend on the other rows (the memory is
    always M slots; padding words and trailing empty slots never change a result), so a server can batch requests.

    The vocabulary file that the tables read, and that saving copies under the SavedModel's assets/
    (`vocabulary.txt`), is written into a temporary directory of this module's own: `close()` removes it once the
    module has been saved.
    """

    def __init__(self, task, config, model):
        super().__init__()
        vocabulary = task.data(config).vocabulary
        self.model = model
        self.memory_size = int(config["memory_size"])
        self._scratch = tempfile.TemporaryDirectory(prefix="vocabulary-")
        path = os.path.join(self._scratch.name, "vocabulary.txt")
        with open(path, "w", encoding="utf-8", newline="\n") as file:
            file.write("".join(token + "\n" for token in vocabulary))
        whole_line, line_number = tf.lookup.TextFileIndex.WHOLE_LINE, tf.lookup.TextFileIndex.LINE_NUMBER
        self.token_ids = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(path, tf.string, whole_line, tf.int64, line_number,
                                          vocab_size=len(vocabulary)),
            default_value=tf.constant(1, tf.int64),  # <unk>
        )
        self.tokens = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(path, tf.int64, line_number, tf.string, whole_line,
                                          vocab_size=len(vocabulary)),
            default_value=UNK,
        )
        self.functions = {
            "serving_default": tf.function(self._answer, input_signature=[
                tf.TensorSpec([None], tf.string, name="story"),
                tf.TensorSpec([None], tf.string, name="question"),
            ]),
        }

    def close(self):
        """Removes the temporary vocabulary file. Call it after saving: the tables cannot be rebuilt without it."""
        self._scratch.cleanup()

    def encode(self, story, question):
        """The model's inputs for the strings: (story ids int32 [batch, M, words], query ids int32 [batch, words'],
        the kept sentences' text string [batch, M], kept int32 [batch], dropped int32 [batch])."""
        lines = tf.strings.split(tf.strings.regex_replace(story, "\r\n?", "\n"), sep="\n")  # [batch, (lines)]
        tokens = lines.with_flat_values(tokenize_in_graph(lines.flat_values))  # [batch, (lines), (tokens)]
        filled = tokens.row_lengths(axis=2) > 0
        tokens = tf.ragged.boolean_mask(tokens, filled)
        lines = tf.ragged.boolean_mask(lines, filled)
        count = tf.cast(tokens.row_lengths(), tf.int32)
        query = tokenize_in_graph(question)
        checks = [
            tf.debugging.assert_equal(tf.shape(story), tf.shape(question),
                                      message="story and question need one value per row each"),
            tf.debugging.assert_positive(count, message="story: every story needs at least one sentence (a line "
                                                        "with a token); got an empty one"),
            tf.debugging.assert_positive(query.row_lengths(), message="question: every question needs at least "
                                                                      "one token; got an empty one"),
        ]
        with tf.control_dependencies(checks):
            count = tf.identity(count)
        kept = tokens[:, -self.memory_size:]
        batch = tf.shape(story)[0]
        words = tf.maximum(tf.reduce_max(kept.row_lengths(axis=2)), 1)
        ids = tf.ragged.map_flat_values(self._ids, kept).to_tensor(
            default_value=0, shape=tf.stack([tf.cast(batch, tf.int64), self.memory_size, words]))
        query_ids = tf.ragged.map_flat_values(self._ids, query).to_tensor(default_value=0)
        query_ids = tf.pad(query_ids, [[0, 0], [0, tf.maximum(1 - tf.shape(query_ids)[1], 0)]])
        memory = tf.strings.strip(lines[:, -self.memory_size:]).to_tensor(
            default_value="", shape=tf.stack([tf.cast(batch, tf.int64), self.memory_size]))
        kept_count = tf.minimum(count, self.memory_size)
        return ids, query_ids, memory, kept_count, count - kept_count

    def _ids(self, tokens):
        return tf.cast(self.token_ids.lookup(tokens), tf.int32)

    def _answer(self, story, question):
        ids, query_ids, memory, kept, dropped = self.encode(story, question)
        logits, attention = self.model.call_with_attention((ids, query_ids))
        logits = tf.cast(logits, tf.float32)
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)
        probability = tf.gather(tf.nn.softmax(logits, axis=-1), best, batch_dims=1)
        return {
            "answer": self.tokens.lookup(tf.cast(best, tf.int64)),
            "probability": probability,
            "attention": tf.cast(attention, tf.float32),
            "memory": memory,
            "sentences": kept,
            "dropped": dropped,
        }
