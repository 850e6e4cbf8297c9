"""Trainer: the one training loop, shared by every task and every distribution strategy.

It is a custom loop (`strategy.run` with a `GradientTape`) rather than Keras `fit`, because Keras 3 `fit` fails under
MultiWorkerMirroredStrategy; one loop then serves the default, mirrored, multi-worker and TPU strategies alike.

What a run leaves in its model_dir:

    config.json            the resolved config (task, preset, every hyperparameter, and what the model started from)
    checkpoints/           the last `keep_checkpoints` checkpoints: model, optimizer, step, epoch, step in epoch, best
    best/                  the model at its best validation metric: a checkpoint, model.keras (a Keras file that
                           `keras.saving.load_model` opens after `import zoo`) and best.json (metric, value, step)
    logs/train, logs/validation   TensorBoard: loss, metrics, learning rate, gradient global norm, and the values of
                           the task's training schedules (`Task.train_scalars`, e.g. a scheduled sampling probability)
    metrics.json           the final training and validation metrics, and the best checkpoint's

Running again with the same model_dir resumes from the latest checkpoint, mid-epoch included: the training stream's
order is fixed by the seed, so resuming skips exactly the batches already seen. A model_dir without a checkpoint holds
no run yet (e.g. one that failed before its first checkpoint): a new config starts afresh there. A fresh run may start
its model from another run's best checkpoint (`init_from`, see `training.warm_start`). Checkpoints are written by
TensorFlow's CheckpointManager, which writes the files first and then atomically renames the index that points to
them, so a killed run never leaves a half-written latest checkpoint.
"""

import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from training import config as run_config
from training import model_file
from training import strategies
from training import warm_start

# Defaults every task preset builds on; a preset or --override replaces them.
DEFAULTS = {
    "seed": 0,
    "batch_size": 32,  # per replica; the global batch is batch_size * replicas
    "epochs": 10,
    "steps": None,  # when set, training stops after this many steps in all (it overrides epochs)
    "steps_per_epoch": None,  # default: one pass over the training split
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "learning_rate_decay_epochs": None,  # when set, the learning rate steps down after every that many epochs ...
    "learning_rate_decay_factor": None,  # ... multiplied by this (None: 0.5)
    "learning_rate_decay_start_epoch": None,  # when set, the first decay comes after this many epochs
    "eval_batch_size": None,  # streams (truncated BPTT): how many streams evaluation cuts a split into (None: batch)
    "clip_global_norm": None,  # clip the gradient's global norm to this value
    "clip_value": None,  # clip every gradient component to [-clip_value, clip_value]
    "checkpoint_every_steps": 100,
    "keep_checkpoints": 3,
    "log_every_steps": 10,
}

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped without writing a checkpoint of the diverged weights."""


class Trainer:
    """Trains `task` with `config` in `model_dir` under `strategy`.

    Args:
        task: a `training.tasks.Task`.
        config: the resolved config (`training.config.resolve`), with "task" and "preset", and "mixed_precision"
            (float16 compute with float32 weights and dynamic loss scaling; part of the config because it changes
            what a checkpoint holds).
        model_dir: where the run's files live; an existing run there (one with a checkpoint) is resumed.
        strategy: a `tf.distribute.Strategy` (default: the default strategy).
        jit_compile: compile the training step with XLA.
        progress: "bar" (a bar per epoch, redrawn in place), "lines" (a line every `log_every_steps` steps, at
            most one every `line_seconds`, and one per epoch) or "auto" (a bar on a terminal, lines otherwise).
        out: where progress goes (default stdout).
        init_from: the directory of a run of the same task whose best checkpoint a fresh run's model starts from
            (fine-tuning); ignored when model_dir holds a run to resume. Recorded in config["init_from"].
    """

    # Off a terminal, a step's line is left out when the previous one is younger than this: fast steps do not flood
    # a log, and slow ones still get a line every log_every_steps steps.
    line_seconds = 5.0

    def __init__(self, task, config, model_dir, strategy=None, jit_compile=False, progress="auto", out=None,
                 init_from=None):
        task.check_config(config)
        self.task = task
        self.config = {"init_from": None, **config}
        self.model_dir = model_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = strategies.is_chief(self.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        self.global_batch = self.config["batch_size"] * self.replicas
        # Truncated BPTT on token streams (`Task.streams`): every batch is the next window of parallel streams, and
        # the model's state at the end of a window is the initial state of the next (see `_build`).
        self.streams = bool(task.streams(self.config))
        self.eval_streams = self._eval_streams() if self.streams else None
        self.steps_per_epoch = task.steps_per_epoch(self.config, self.global_batch)
        self.out = out or sys.stdout
        if progress not in ("auto", "bar", "lines"):
            raise ValueError(f"progress must be 'auto', 'bar' or 'lines', got {progress!r}")
        if progress == "auto":
            progress = "bar" if self.chief and hasattr(self.out, "isatty") and self.out.isatty() else "lines"
        self.progress = progress
        self.monitor, self.monitor_mode = task.monitor
        source = self._prepare_model_dir(init_from)
        keras.utils.set_random_seed(self.config["seed"])
        self._build(bool(self.config.get("mixed_precision", False)))
        if source is not None:
            warm_start.copy_weights(self.model, source)
        if self.chief:  # only now: a run that cannot start (a bad cell name, missing data) leaves no files
            os.makedirs(self.model_dir, exist_ok=True)
            _write_json(os.path.join(self.model_dir, "config.json"), self.config)
        # reduce_retracing: batches bucketed by length differ in their time dimension; after a few shapes the step
        # is traced once for any length instead of once per length.
        self._train_step = tf.function(self._distributed_train_step, jit_compile=jit_compile, reduce_retracing=True)
        self._eval_step = tf.function(self._distributed_eval_step, reduce_retracing=True)
        self._writers = None
        # One entry per epoch finished by this object: {"epoch", "step", "seconds" (of training, validation left
        # out), "train", "validation"}.
        self.history = []

    # Set-up.

    def _prepare_model_dir(self, init_from):
        """Checks the config against a run to resume; for a fresh run, finds the `warm_start.Source` to start from
        (returned, or None) and completes the config with what it carries over."""
        if os.path.exists(self.model_dir) and not os.path.isdir(self.model_dir):
            raise ValueError(f"model_dir {self.model_dir!r} exists and is not a directory")
        path = os.path.join(self.model_dir, "config.json")
        saved = None
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if not isinstance(saved, dict) or "task" not in saved:
                raise ValueError(f"model_dir {self.model_dir!r} holds a config.json that is not a run's; train in "
                                 "another --model_dir")
        if tf.train.latest_checkpoint(os.path.join(self.model_dir, "checkpoints")):
            # A run to resume: its own checkpoint wins over init_from, and how it started stays as it was.
            if init_from and self.chief:
                print(f"resuming the run in {self.model_dir}: init_from is ignored", file=self.out)
            self.config["init_from"] = saved.get("init_from") if saved else None
            if self.config["init_from"]:
                self.config.update({k: saved[k] for k in self.task.warm_start_keys if k in saved})
            if saved is not None:
                run_config.check_resumable(saved, self.config)
            return None
        if saved is not None and self.chief and _differs(saved, self.config):
            print(f"{self.model_dir} holds no checkpoint yet: its config.json is replaced by this run's", file=self.out)
        if not init_from:
            return None
        source = warm_start.find_source(init_from, self.task.name)
        self.config = self.task.warm_start_config(self.config, source.config)
        self.task.check_config(self.config)
        self.config["init_from"] = source.record()
        return source

    def _build(self, mixed_precision):
        policy = keras.config.dtype_policy()
        if mixed_precision:
            keras.config.set_dtype_policy("mixed_float16")
        try:
            with self.strategy.scope():
                self.model = self.task.build_model(self.config)
                inputs = self.task.split_data(self.config)["train"][0]
                # One training example as a batch of one (each column of a tuple or dict of columns, e.g. source and
                # decoder input ids, or a tree's words, children and heights): the call builds the model's weights.
                if isinstance(inputs, dict):
                    self.model({key: np.asarray(column[0])[None] for key, column in inputs.items()})
                elif isinstance(inputs, tuple):
                    self.model(tuple(np.asarray(column[0])[None] for column in inputs))
                else:
                    self.model(np.asarray(inputs[0])[None])
                self.optimizer = self._make_optimizer(mixed_precision)
                self.optimizer.build(self.model.trainable_variables)
        finally:
            keras.config.set_dtype_policy(policy)
        # Bookkeeping that only the host reads and writes: plain variables, outside the strategy's scope.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
        worst = math.inf if self.monitor_mode == "min" else -math.inf
        self.best = tf.Variable(worst, dtype=tf.float64, trainable=False, name="best")
        carried = {}
        if self.streams:
            # The state carried from window to window, for every stream of every replica: rows
            # [r * batch_size, (r + 1) * batch_size) are replica r's streams (`training.data.streams`). Host variables
            # like the step: each step reads its replica's rows and writes back every replica's (gathered, so that
            # every worker holds all of them and the chief's checkpoint saves them all). The evaluation's own
            # state is apart, so a validation pass leaves the training streams where they were.
            self.carried_state = self._state_variables(self.global_batch, "carried_state")
            self.eval_state = self._state_variables(self.eval_streams, "eval_state")
            carried = {"carried_state": {f"{i}": v for i, v in enumerate(self.carried_state)}}
        self.checkpoint = tf.train.Checkpoint(
            model=_checkpointable(self.model.variables),
            optimizer=_checkpointable(self.optimizer.variables, with_paths=False),
            step=self.step,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            best=self.best,
            **carried,
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self._own_dir("checkpoints"), max_to_keep=self.config["keep_checkpoints"]
        )
        self.best_manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=_checkpointable(self.model.variables), step=self.step),
            self._own_dir("best"),
            max_to_keep=1,
        )

    def _eval_streams(self):
        """How many streams an evaluation pass cuts a split into: config["eval_batch_size"], or the global batch."""
        streams = self.config.get("eval_batch_size") or self.global_batch
        if streams % self.replicas:
            raise ValueError(
                f"eval_batch_size ({streams}) must be a multiple of the {self.replicas} replicas: each replica "
                "evaluates the same number of streams"
            )
        return streams

    def _state_variables(self, rows, name):
        """Host variables [rows, size] (dtype of the task's initial state) for a carried state, one per tensor."""
        initial = self.task.initial_state(self.config, self.model, 1)
        return [
            tf.Variable(tf.repeat(tf.convert_to_tensor(tensor), rows, axis=0), trainable=False, name=f"{name}_{i}")
            for i, tensor in enumerate(initial)
        ]

    def _replica_state(self, variables, first_window):
        """This replica's rows of a carried state, reset to the initial state where a stream's epoch starts, with
        its gradient stopped: truncated BPTT back-propagates within a window only."""
        rows = tf.shape(first_window)[0]
        start = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int32) * rows
        initial = self.task.initial_state(self.config, self.model, rows)
        state = []
        for variable, fresh in zip(variables, initial):
            carried = variable[start : start + rows]
            fresh = tf.cast(fresh, carried.dtype)
            reset = tf.reshape(first_window, [-1] + [1] * (len(carried.shape) - 1))
            state.append(tf.stop_gradient(tf.where(reset, fresh, carried)))
        return tuple(state)

    def _store_state(self, variables, state):
        """Writes every replica's final state (per-replica values) into the host variables, replicas in order."""
        for variable, value in zip(variables, state):
            variable.assign(tf.cast(self.strategy.gather(value, axis=0), variable.dtype))

    def _make_optimizer(self, mixed_precision):
        name = self.config["optimizer"]
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; valid optimizers: {sorted(OPTIMIZERS)}")
        optimizer = OPTIMIZERS[name](learning_rate=learning_rate(self.config, self.steps_per_epoch))
        return keras.optimizers.LossScaleOptimizer(optimizer) if mixed_precision else optimizer

    def _own_dir(self, name):
        """The chief writes to model_dir/name; the other workers (whose saves are collective too) to scratch."""
        if self.chief:
            return os.path.join(self.model_dir, name)
        index = strategies.worker_index(self.strategy)
        return os.path.join(self.model_dir, ".workers", f"worker-{index}", name)

    def _save(self, manager):
        manager.save(checkpoint_number=int(self.step))
        if not self.chief:
            shutil.rmtree(manager.directory, ignore_errors=True)

    def restore(self, which="latest"):
        """Restores the latest checkpoint (all state) or the best one (the model); returns its path or None."""
        directory = os.path.join(self.model_dir, "checkpoints" if which == "latest" else "best")
        path = tf.train.latest_checkpoint(directory)
        if path is None:
            return None
        if which == "latest":
            self.checkpoint.restore(path).assert_consumed()
        else:
            tf.train.Checkpoint(model=_checkpointable(self.model.variables), step=self.step).restore(
                path
            ).assert_consumed()
        return path

    # The steps.

    def train_step(self, batch):
        """One optimization step on a distributed batch; returns the step's sums over examples as floats."""
        # The step count goes in as a tensor (not the variable, which lives on the host), for the task's schedules.
        step = tf.constant(int(self.step), tf.int64)
        return {key: float(value) for key, value in self._train_step(batch, step).items()}

    def _replica_train_step(self, inputs, targets, weights, step, first_window=None):
        """One replica's step. With streams, `weights` [batch, T] marks the window's real positions and
        `first_window` [batch] where a stream's epoch starts; it returns (sums, final state)."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            if self.streams:
                state = self._replica_state(self.carried_state, first_window)
                predictions, state = self.task.stream_predictions(
                    self.config, self.model, inputs, state, weights > 0, training=True
                )
                weights = tf.ones_like(first_window, tf.float32)  # every stream counts alike; padding is masked
            else:
                predictions = self.task.train_predictions(self.config, self.model, inputs, step)
            per_example = self.task.loss(self.config, targets, predictions)
            loss = tf.reduce_sum(per_example * weights) / self.global_batch
            if self.model.losses:
                loss += tf.add_n(self.model.losses) / self.replicas
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, variables)
        # Embedding lookups give sparse gradients (IndexedSlices); the all-reduce, clipping and scaling below work on
        # dense tensors.
        gradients = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in gradients]
        # Sum over replicas here, so that clipping and the logged norm see the gradient of the global batch ...
        gradients = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        scale = tf.cast(self.optimizer.scale_loss(tf.constant(1.0)), tf.float32)
        norm = tf.linalg.global_norm(gradients) / scale
        if self.config["clip_value"]:
            limit = self.config["clip_value"] * scale
            gradients = [tf.clip_by_value(g, -limit, limit) for g in gradients]
        if self.config["clip_global_norm"]:
            gradients, _ = tf.clip_by_global_norm(gradients, self.config["clip_global_norm"] * scale)
        # ... and hand the optimizer 1/replicas of it: Keras's optimizer sums over replicas again when it applies.
        self.optimizer.apply_gradients(zip([g / self.replicas for g in gradients], variables))
        sums = self._sums(targets, predictions, per_example, weights)
        sums["grad_norm"] = norm / self.replicas  # every replica holds the same norm; the SUM reduce restores it
        return (sums, state) if self.streams else sums

    def _sums(self, targets, predictions, per_example, weights):
        sums = {"loss": tf.reduce_sum(per_example * weights), "examples": tf.reduce_sum(weights)}
        for name, values in self.task.metrics(self.config, targets, predictions).items():
            sums[name] = tf.reduce_sum(tf.cast(values, tf.float32) * weights)
        return sums

    def _replica_eval_step(self, inputs, targets, weights, first_window=None):
        if not self.streams:
            predictions = self.task.eval_predictions(self.config, self.model, inputs)
            return self._sums(targets, predictions, self.task.loss(self.config, targets, predictions), weights)
        state = self._replica_state(self.eval_state, first_window)
        predictions, state = self.task.stream_predictions(
            self.config, self.model, inputs, state, weights > 0, training=False
        )
        weights = tf.ones_like(first_window, tf.float32)
        return self._sums(targets, predictions, self.task.loss(self.config, targets, predictions), weights), state

    def _distributed_train_step(self, batch, step):
        if self.streams:
            sums, state = self.strategy.run(
                self._replica_train_step, args=(batch.inputs, batch.targets, batch.weights, step, batch.first_window)
            )
            self._store_state(self.carried_state, state)
        else:
            sums = self.strategy.run(self._replica_train_step, args=(*batch, step))
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in sums.items()}

    def _distributed_eval_step(self, batch):
        if self.streams:
            sums, state = self.strategy.run(self._replica_eval_step, args=tuple(batch))
            self._store_state(self.eval_state, state)
        else:
            sums = self.strategy.run(self._replica_eval_step, args=batch)
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in sums.items()}

    # Data.

    def train_data(self, skip_steps=0):
        """The run's distributed training batches, one per step, after the first `skip_steps` steps' worth."""

        def dataset_fn(context):
            if self.streams:
                # One window per step, each local replica's streams in turn (`training.data.streams`).
                return self.task.stream_data(
                    self.config,
                    "train",
                    context.get_per_replica_batch_size(self.global_batch),
                    input_context=context,
                    skip_windows=skip_steps,
                )
            # Each step takes one batch per local replica from this worker's pipeline.
            local_replicas = context.num_replicas_in_sync // context.num_input_pipelines
            return self.task.dataset(
                self.config,
                "train",
                context.get_per_replica_batch_size(self.global_batch),
                input_context=context,
                skip_batches=skip_steps * local_replicas,
            )

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    def evaluate(self, split="validation"):
        """{metric: mean over the split's examples}, loss included, with the model as it is now."""

        def dataset_fn(context):
            if self.streams:
                # The whole split once, cut into eval_streams streams, the state carried through it.
                return self.task.stream_data(
                    self.config, split, context.get_per_replica_batch_size(self.eval_streams), input_context=context
                )
            return self.task.dataset(
                self.config,
                split,
                context.get_per_replica_batch_size(self.global_batch),
                input_context=context,
                pad_to_multiple=self.global_batch,
            )

        totals = {}
        for batch in self.strategy.distribute_datasets_from_function(dataset_fn):
            for key, value in self._eval_step(batch).items():
                totals[key] = totals.get(key, 0.0) + float(value)
        return self._summarize(totals)

    def _summarize(self, totals):
        """Sums over examples -> the task's metrics: means, and what the task derives from them (e.g. perplexity
        from summed token log-likelihoods and token counts)."""
        return self.task.summarize(self.config, _means(totals))

    # The loop.

    def fit(self):
        """Trains to `epochs` (or `steps`) from wherever the model_dir's latest checkpoint left off.

        Returns the final metrics (also written to metrics.json). Raises `TrainingDiverged` on a NaN or Inf loss.
        """
        resumed = self.restore("latest")
        total_steps = self.config["steps"] or self.config["epochs"] * self.steps_per_epoch
        if resumed and self.chief:
            print(f"resumed from {resumed} at step {int(self.step)} (epoch {int(self.epoch) + 1})", file=self.out)
        train_totals, train, validation = {}, {}, {}
        batches = iter(self.train_data(skip_steps=int(self.step)))
        started = time.perf_counter()
        progress = self._progress(total_steps)
        while int(self.step) < total_steps:
            sums = self.train_step(next(batches))
            step = int(self.step.assign_add(1))
            self.step_in_epoch.assign_add(1)
            loss = sums["loss"] / max(sums["examples"], 1.0)
            if not math.isfinite(loss):
                progress.close()
                raise TrainingDiverged(self._divergence_message(loss, step))
            for key, value in sums.items():
                train_totals[key] = train_totals.get(key, 0.0) + value
            self._log_step(step, loss, sums["grad_norm"])
            progress.update(step, int(self.step_in_epoch), loss)
            if step % self.config["checkpoint_every_steps"] == 0:
                self._save(self.manager)
            if int(self.step_in_epoch) == self.steps_per_epoch:
                train = self._summarize(train_totals)
                validation = self._end_epoch(train, time.perf_counter() - started)
                train_totals, started = {}, time.perf_counter()
        if train_totals or not validation:  # stopped mid-epoch by --steps, or resumed a finished run
            train = self._summarize(train_totals) if train_totals else train
            validation = self.evaluate("validation")
            self._keep_if_best(validation)
            self._write_summaries(train, validation)  # train: the partial epoch's means, or {} if none
        self._save(self.manager)
        return self._finish(train, validation)

    def _end_epoch(self, train, seconds):
        validation = self.evaluate("validation")
        self.epoch.assign_add(1)
        self.step_in_epoch.assign(0)
        self.task.after_validation(self.config, self.model, int(self.epoch), validation, float(self.best))
        self._keep_if_best(validation)
        self._save(self.manager)
        self._log_epoch(train, validation, seconds)
        self.history.append({"epoch": int(self.epoch), "step": int(self.step), "seconds": seconds, "train": train,
                             "validation": validation})
        return validation

    def _keep_if_best(self, validation):
        """Saves the model as the best checkpoint if its validation metric beats the best so far."""
        value = validation[self.monitor]
        improved = value < float(self.best) if self.monitor_mode == "min" else value > float(self.best)
        if not improved:
            return
        self.best.assign(value)
        self._save(self.best_manager)
        if self.chief:
            model_file.save(self.model, os.path.join(self.model_dir, "best", model_file.BEST_FILE))
            _write_json(
                os.path.join(self.model_dir, "best", "best.json"),
                {"metric": self.monitor, "value": value, "step": int(self.step), "epoch": int(self.epoch)},
            )

    def _finish(self, train, validation):
        metrics = {
            "task": self.config.get("task"),
            "preset": self.config.get("preset"),
            "step": int(self.step),
            "epoch": int(self.epoch),
            "train": train,
            "validation": validation,
            "best": {"metric": self.monitor, "value": float(self.best)},
        }
        if self.chief:
            _write_json(os.path.join(self.model_dir, "metrics.json"), metrics)
        return metrics

    def _divergence_message(self, loss, step):
        latest = tf.train.latest_checkpoint(os.path.join(self.model_dir, "checkpoints"))
        kept = f"the last good checkpoint, {latest}, is kept" if latest else "no checkpoint had been written yet"
        return (
            f"training stopped: the loss is {loss} at step {step} (epoch {int(self.epoch) + 1}); {kept}. "
            "Lower learning_rate or set clip_global_norm / clip_value (--override)."
        )

    # Reporting.

    def _progress(self, total_steps):
        """What the fit loop shows while it trains to `total_steps` (only the chief shows anything)."""
        return _Progress(
            self.out,
            self.progress if self.chief else None,
            total_steps,
            self.steps_per_epoch,
            self.config["log_every_steps"],
            self.line_seconds,
            step=int(self.step),
            step_in_epoch=int(self.step_in_epoch),
        )

    def _summary_writers(self):
        if self._writers is None:
            if self.chief:
                self._writers = {
                    name: tf.summary.create_file_writer(os.path.join(self.model_dir, "logs", name))
                    for name in ("train", "validation")
                }
            else:
                self._writers = {name: tf.summary.create_noop_writer() for name in ("train", "validation")}
        return self._writers

    def _log_step(self, step, loss, grad_norm):
        if step % self.config["log_every_steps"]:
            return
        with self._summary_writers()["train"].as_default(step=step):
            tf.summary.scalar("loss", loss)
            tf.summary.scalar("gradient_global_norm", grad_norm)
            tf.summary.scalar("learning_rate", float(keras.ops.convert_to_numpy(self.optimizer.learning_rate)))
            for name, value in self.task.train_scalars(self.config, step - 1).items():  # the step just taken
                tf.summary.scalar(name, value)

    def _log_epoch(self, train, validation, seconds):
        step = int(self.step)
        self._write_summaries(train, validation)
        if self.chief:
            shown = " - ".join(
                [f"{k} {v:.4g}" for k, v in train.items() if k != "grad_norm"]
                + [f"val_{k} {v:.4g}" for k, v in validation.items()]
            )
            print(f"epoch {int(self.epoch)} - step {step} - {seconds:.1f}s - {shown}", file=self.out, flush=True)

    def _write_summaries(self, train, validation):
        """TensorBoard: the train and validation metrics as `epoch_*` scalars at the current step, flushed."""
        writers = self._summary_writers()
        for name, values in (("train", train), ("validation", validation)):
            with writers[name].as_default(step=int(self.step)):
                for key, value in values.items():
                    tf.summary.scalar(f"epoch_{key}", value)
        for writer in writers.values():
            writer.flush()


class _Progress:
    """What a person sees while a run trains, from step `step` (`step_in_epoch` into its epoch) to `total_steps`.

    mode "bar": a bar per epoch, redrawn in place, counting to the epoch's last step or to the run's last step when
    that comes first (a `--steps` run's last epoch may be partial). mode "lines": a line every `every_steps` steps
    with the run's step, the mean loss since the previous line, steps/s over those steps and the ETA of the run; a
    line is left out when the previous one is younger than `line_seconds`. mode None: nothing.

    Rates leave out the first step of the process (it includes tracing). `close()` ends a bar cut short (the run
    stopped or diverged mid-epoch) with a newline, so that what is printed next starts on its own line.
    """

    def __init__(self, out, mode, total_steps, steps_per_epoch, every_steps, line_seconds, step, step_in_epoch):
        self.out, self.mode, self.total_steps, self.steps_per_epoch = out, mode, total_steps, steps_per_epoch
        self.every_steps, self.line_seconds = every_steps, line_seconds
        self._bar = None
        self._window = None  # (step, time) where the next line's rate starts
        self._losses = []  # the step losses since the previous line
        self._printed = None  # when the previous line was printed
        if mode == "bar" and step < total_steps:
            self._start_bar(step - step_in_epoch, step_in_epoch)

    def update(self, step, step_in_epoch, loss):
        """Reports the step just taken: the run's `step`, the epoch's `step_in_epoch`, and the step's loss."""
        if self.mode == "bar":
            if self._bar is None:
                self._start_bar(step - step_in_epoch, step_in_epoch - 1)
            self._bar.update(step_in_epoch, loss)
            if self._bar.ended:
                self._bar = None
        elif self.mode == "lines":
            self._line(step, loss)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _start_bar(self, epoch_start, done):
        epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        target = min(self.steps_per_epoch, self.total_steps - epoch_start)
        header = f"epoch {epoch_start // self.steps_per_epoch + 1}/{epochs}"
        if target < self.steps_per_epoch:
            header += f" (the run stops after {target} of its {self.steps_per_epoch} steps)"
        print(header, file=self.out, flush=True)
        self._bar = _Bar(self.out, target, done)

    def _line(self, step, loss):
        now = time.perf_counter()
        self._losses.append(loss)
        if self._window is None:
            self._window = (step, now)
            return
        if step % self.every_steps or (self._printed is not None and now - self._printed < self.line_seconds):
            return
        first, since = self._window
        rate = (step - first) / max(now - since, 1e-9)
        epoch = (step - 1) // self.steps_per_epoch + 1
        print(
            f"step {step}/{self.total_steps} (epoch {epoch}) - loss {np.mean(self._losses):.4g} - "
            f"{_rate(rate)} steps/s - ETA {_duration((self.total_steps - step) / rate)}",
            file=self.out,
            flush=True,
        )
        self._window, self._losses, self._printed = (step, now), [], now


class _Bar:
    """One line redrawn in place (a carriage return first): `done`/`target` steps, a bar, steps/s and the ETA (the
    time taken once done), and the mean loss. It ends with a newline when it reaches its target or is closed."""

    width = 30
    interval = 0.1  # seconds between redraws, but the last one

    def __init__(self, out, target, done):
        self.out, self.target, self.done = out, target, done
        self.ended = False
        self._created = time.perf_counter()
        self._start = None  # (done, time) at the first update: rates leave out the step before it
        self._losses = []
        self._drawn, self._drawn_done, self._shown = -math.inf, None, 0
        self._draw(self._created)

    def update(self, done, loss):
        now = time.perf_counter()
        self.done = done
        self._losses.append(loss)
        if self._start is None:
            self._start = (done, now)
        if done >= self.target:
            self.close()
        elif now - self._drawn >= self.interval:
            self._draw(now)

    def close(self):
        """Draws the last step taken (redraws are spaced out) and ends the line."""
        if not self.ended:
            if self._drawn_done != self.done:
                self._draw(time.perf_counter())
            self.out.write("\n")
            self.out.flush()
            self.ended = True

    def _draw(self, now):
        digits = len(str(self.target))
        filled = self.width * self.done // self.target
        bar = "=" * filled + (">" if filled < self.width else "") + "." * (self.width - filled - 1)
        text = f"{self.done:>{digits}}/{self.target} [{bar}]"
        first, since = self._start or (self.done, now)
        if self.done > first:
            rate = (self.done - first) / max(now - since, 1e-9)
            text += f" {_rate(rate)} steps/s"
            if self.done < self.target:
                text += f" - ETA {_duration((self.target - self.done) / rate)}"
        if self.done >= self.target:
            text += f" - {_duration(now - self._created)}"
        if self._losses:
            text += f" - loss {np.mean(self._losses):.4g}"
        self.out.write("\r" + text + " " * max(self._shown - len(text), 0))
        self.out.flush()
        self._drawn, self._drawn_done, self._shown = now, self.done, len(text)


def _rate(steps_per_second):
    """Three significant digits (85.2, 0.0512), whole numbers from 100 on (1234)."""
    return f"{steps_per_second:.0f}" if steps_per_second >= 100 else f"{steps_per_second:.3g}"


def _duration(seconds):
    """12.3s under a minute, h:mm:ss from a minute on."""
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def learning_rate(config, steps_per_epoch):
    """The config's learning rate: a constant, or with `learning_rate_decay_epochs` set, multiplied by
    `learning_rate_decay_factor` (None: 0.5) after every that many epochs (a step decay, e.g. the memory network
    recipe's halving every 25 epochs). With `learning_rate_decay_start_epoch` k as well, the rate stays constant for
    k epochs and the first decay comes at the start of epoch k + 1 (Zaremba et al. 2014's schedule: lr 1 for 4
    epochs, then halved after every epoch, is decay_epochs 1, factor 0.5, start 4). The schedule counts the
    optimizer's steps, which the checkpoint holds. A config written before these keys existed lacks them: a constant
    rate (or, without a start, a decay from the first epoch)."""
    every = config.get("learning_rate_decay_epochs")
    if not every:
        return config["learning_rate"]
    factor = config.get("learning_rate_decay_factor")
    factor = 0.5 if factor is None else factor
    start = config.get("learning_rate_decay_start_epoch")
    if start is not None:
        return DelayedStepDecay(config["learning_rate"], steps_per_epoch, every, factor, start)
    return keras.optimizers.schedules.ExponentialDecay(
        config["learning_rate"], decay_steps=every * steps_per_epoch, decay_rate=factor, staircase=True,
    )


class DelayedStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """rate * factor ** n, where n = 0 in the first `start_epoch` epochs and then grows by one at the start of epoch
    start_epoch + 1 and every `every_epochs` epochs after it: n = max(0, (epoch - start_epoch) // every_epochs + 1)
    for the 0-based epoch = step // steps_per_epoch."""

    def __init__(self, rate, steps_per_epoch, every_epochs, factor, start_epoch):
        self.rate, self.steps_per_epoch, self.every_epochs = rate, steps_per_epoch, every_epochs
        self.factor, self.start_epoch = factor, start_epoch

    def __call__(self, step):
        epoch = keras.ops.floor_divide(keras.ops.cast(step, "int64"), self.steps_per_epoch)
        decays = keras.ops.maximum(keras.ops.floor_divide(epoch - self.start_epoch, self.every_epochs) + 1, 0)
        return self.rate * keras.ops.power(float(self.factor), keras.ops.cast(decays, "float32"))

    def get_config(self):
        return {"rate": self.rate, "steps_per_epoch": self.steps_per_epoch, "every_epochs": self.every_epochs,
                "factor": self.factor, "start_epoch": self.start_epoch}


def _checkpointable(variables, with_paths=True):
    """The raw `tf.Variable`s behind Keras variables, keyed by position (and path), for `tf.train.Checkpoint`.

    Keras 3 models do not expose every layer to TensorFlow's object graph (layers held in a list are missing), so
    checkpoints name the variables explicitly. Positions keep keys unique (two seed generators share a path); a
    model variable's path without the model's own name keeps its key readable and free of name suffixes such as
    "stacked_rnn_1". Optimizer variable paths embed the model's name, so they are keyed by position only.
    """
    if not with_paths:
        return {f"{index:04d}": variable.value for index, variable in enumerate(variables)}
    return {f"{index:04d}:{variable.path.split('/', 1)[-1]}": variable.value for index, variable in enumerate(variables)}


def _differs(saved, requested):
    """Whether a saved config is one that `requested` could not resume."""
    try:
        run_config.check_resumable(saved, requested)
    except ValueError:
        return True
    return False


def _means(totals):
    """Sums over examples -> means; the gradient norm is averaged over steps instead."""
    if not totals:
        return {}
    examples = max(totals.get("examples", 0.0), 1.0)
    means = {k: v / examples for k, v in totals.items() if k not in ("examples", "grad_norm")}
    return means


def _write_json(path, value):
    """Writes JSON atomically (a temporary file renamed over the target)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
    os.replace(temporary, path)
