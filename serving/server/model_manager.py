"""ModelManager: which versions of which models are loaded, as TensorFlow Serving decides it.

Each model of the config has a base path whose numeric subdirectories are its versions. A poll (every
`poll_seconds`) reads the directory, picks the aspired versions by the model's version policy (latest N, all, or
specific), and moves towards them with TF Serving's availability-preserving policy: a new version is loaded while
the old one keeps serving, and a version that is no longer aspired is unloaded only if another version is loaded,
as soon as that other version is available.

Loads run on a pool of `num_load_threads` threads, so one model's slow or failing load does not hold up another's.
A failing load is retried `max_load_retries` times, `load_retry_seconds` apart; a retry waits in the pool's queue,
holding no thread and no lock. A version that is no longer aspired while it waits for a retry is not retried. A
load that fails for good ends in END with its error, and whatever was serving keeps serving.

Versions keep their END entries in the status list, as TF Serving's do, but the manager itself forgets a version
once it is unloaded, or once its load failed and it is no longer aspired: aspired again (a rollback to the previous
version, a fixed copy published under the same number), it is loaded again. A version whose load failed and that
stays aspired is not loaded again.

The status list is read by clients (GetModelStatus): its error messages go through `client_load_error`, which hides
the server's paths and Python's exception names; the full errors are in the server's log.
"""

import functools
import heapq
import itertools
import logging
import os
import re
import threading
import time

from serving.server.errors import ServingError
from serving.server.servable import Servable

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"

log = logging.getLogger("serving.server")

# Characters that end a path in an error message (a path with a space in it is cut there).
_PATH_END = r"\s'\"`<>|,;()\[\]{}"
# An absolute path: a "/" that does not continue a word, a path or a placeholder, up to a path end; a sentence's
# "." or ":" after it is not part of it.
_ABSOLUTE_PATH = re.compile(rf"(?<![\w./~>-])/[^{_PATH_END}]*[^{_PATH_END}.:]")
# What may follow a base path in a message: the rest of a path, a path end, or a sentence's "." or ":".
_AFTER_BASE_PATH = rf"(?=$|[/{_PATH_END}]|[.:](?:$|[{_PATH_END}]))"


def client_load_error(error, model_name, base_path):
    """The (code, message) that clients may read of a failed load of a version of `model_name`.

    The model's base path (`base_path` as resolved, absolute, and with its links resolved) reads
    `<base path of model NAME>`, so `<base path of model half>/3` is version 3's directory; any other absolute path
    reads `<path>`. A ServingError keeps its code; any other exception is UNKNOWN "the version could not be loaded:
    <its message>", without its class name. The full error belongs in the server's log only.
    """
    if isinstance(error, ServingError):
        code, message = error.code, error.message
    else:
        detail = str(error)
        code, message = "UNKNOWN", "the version could not be loaded" + (f": {detail}" if detail else "")
    spellings = {base_path}
    if "://" not in base_path:
        spellings |= {os.path.abspath(base_path), os.path.realpath(base_path)}
    placeholder = f"<base path of model {model_name}>"
    for spelling in sorted(spellings, key=len, reverse=True):  # a longer one may contain a shorter one
        spelling = spelling.rstrip("/")
        if spelling and ("://" in spelling or os.path.isabs(spelling)):
            message = re.sub(re.escape(spelling) + _AFTER_BASE_PATH, lambda _: placeholder, message)
    message = _ABSOLUTE_PATH.sub("<path>", message)
    return code, message


def _log_text(error):
    """The full text of a load error, for the server's log."""
    if isinstance(error, ServingError):
        return f"{error.code}: {error.message}"
    return f"{type(error).__name__}: {error}"


class VersionState:
    """A version as the manager sees it: its state, the error it ended with, and its Servable while it is loaded."""

    def __init__(self, path):
        self.path = path
        self.state = START
        self.error_code = "OK"
        self.error_message = ""
        self.servable = None
        self.failed = False  # in END by a failed load, and aspired since: not loaded again until aspired anew


def resolve_base_path(base_path, config_dir):
    """Absolute base paths as they are; relative ones against the config file's directory (see serving/README.md)."""
    if os.path.isabs(base_path) or "://" in base_path or config_dir is None:
        return base_path
    return os.path.normpath(os.path.join(config_dir, base_path))


def validate_config(config, config_dir=None):
    """Checks a ModelServerConfig as TF Serving does; returns its ModelConfigs."""
    if config.WhichOneof("config") not in ("model_config_list", None):
        raise ServingError(
            "INVALID_ARGUMENT",
            "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently "
            "supported",
        )
    seen = set()
    for model in config.model_config_list.config:
        if not model.name:
            raise ServingError("INVALID_ARGUMENT", "A model config has no name")
        if model.name in seen:
            raise ServingError("INVALID_ARGUMENT", f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
        if model.model_platform not in ("", "tensorflow"):
            raise ServingError(
                "INVALID_ARGUMENT", f"Model {model.name}: unsupported model_platform {model.model_platform!r}"
            )
        if config_dir is None and not os.path.isabs(model.base_path):
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Expected model {model.name} to have an absolute path or URI; got base_path()={model.base_path}",
            )
    return list(config.model_config_list.config)


class _Model:
    def __init__(self, config, config_dir):
        self.versions = {}
        self.aspired_versions = set()  # as the last poll found them
        self.absent = None  # why the last poll found no version: "base path missing" or "no versions yet"
        self.configure(config, config_dir)

    def configure(self, config, config_dir):
        self.config = config
        self.base_path = resolve_base_path(config.base_path, config_dir)

    def on_disk(self):
        """{version: directory} of the numeric subdirectories of the base path."""
        found = {}
        try:
            names = sorted(os.listdir(self.base_path))
        except OSError:
            names = []
        for name in names:
            path = os.path.join(self.base_path, name)
            if not name.isdigit() or not os.path.isdir(path):
                continue
            version = int(name)
            if version in found:
                log.warning("model %s: versions %s and %s are the same number; using %s", self.config.name,
                            found[version], path, found[version])
                continue
            found[version] = path
        return found

    def aspired(self, on_disk):
        policy = self.config.model_version_policy
        kind = policy.WhichOneof("policy_choice")
        versions = sorted(on_disk, reverse=True)
        if kind == "all":
            return set(versions)
        if kind == "specific":
            wanted = set(policy.specific.versions)
            for missing in sorted(wanted - set(versions)):
                log.warning("model %s: version %d of the specific policy is not under %s", self.config.name, missing,
                            self.base_path)
            return wanted & set(versions)
        count = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
        return set(versions[:count])


class _LoadQueue:
    """Runs functions (load attempts) on up to `size` threads, each when it is due: at once, or after a delay.

    A function waiting for its time (a retry) holds no thread: the threads run whatever is due meanwhile. Threads
    start as work comes and end when none is left, so an idle manager has none.
    """

    def __init__(self, size):
        self._size = size
        self._due = []  # heap of (due time, sequence number, function)
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._threads = set()
        self._stopped = False

    def submit(self, function, delay=0.0):
        with self._condition:
            if self._stopped:
                return
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._sequence), function))
            if len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, name="model-load", daemon=True)
                self._threads.add(thread)
                thread.start()
            self._condition.notify_all()  # a thread waiting for a later function runs this one first

    def _work(self):
        with self._condition:
            while self._due and not self._stopped:
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                function = heapq.heappop(self._due)[2]
                self._condition.release()
                try:
                    function()
                except Exception:  # noqa: BLE001 (the pool's threads must outlive any one load)
                    log.exception("a model load task failed")
                finally:
                    self._condition.acquire()
            self._threads.discard(threading.current_thread())

    def stop(self, timeout):
        """Drops the functions not run yet, and waits up to `timeout` seconds for those running to return."""
        with self._condition:
            self._stopped = True
            self._due.clear()
            self._condition.notify_all()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class ModelManager:
    """Loads, serves and unloads model versions per a ModelServerConfig.

    The constructor polls the base paths once and waits until every aspired version is available or has ended in
    END (retries included), as TF Serving waits for its models before it serves; `start` then polls every
    `poll_seconds` in the background, without waiting for the loads it starts; `stop` ends it all.

    Args:
        config: a `tensorflow.serving.ModelServerConfig`.
        config_dir: directory against which relative base paths resolve (the config file's); None: absolute only.
        poll_seconds: file-system poll interval; 0 polls once, at start.
        max_load_retries, load_retry_seconds: retries of a failing load before it ends in END.
        warmup: a callable `warmup(servable)` run after a version loads and before it serves (raises to fail it).
        allow_labels_for_unavailable: labels new to the config may name versions that are not available.
        num_load_threads: how many versions load at once, 4 by default. TF Serving's --num_load_threads defaults to
            0, loading one version after another; 0 here also loads one at a time (on one thread of the pool).
    """

    def __init__(self, config, config_dir=None, poll_seconds=1.0, max_load_retries=5, load_retry_seconds=60.0,
                 warmup=None, allow_labels_for_unavailable=False, num_load_threads=4):
        if num_load_threads < 0:
            raise ValueError(f"num_load_threads must be 0 or more; got {num_load_threads}")
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified when a load ends
        self._poll_lock = threading.Lock()
        self._config_dir = config_dir
        self.poll_seconds = poll_seconds
        self.max_load_retries = max_load_retries
        self.load_retry_seconds = load_retry_seconds
        self.warmup = warmup
        self.allow_labels_for_unavailable = allow_labels_for_unavailable
        self._models = {}
        self._labels = {}
        self._stop = threading.Event()
        self._thread = None
        self._loads = _LoadQueue(max(1, num_load_threads))
        self._apply_config(config, initial=True)

    # Configuration.

    def _apply_config(self, config, initial, timeout=None):
        models = validate_config(config, self._config_dir)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._poll_lock:  # a poll of the background loop sees the whole new config, after this one
            with self._lock:
                names = {m.name for m in models}
                added = [name for name in names if name not in self._models]
                for name, model in self._models.items():
                    if name not in names:
                        self._unload_all(model)
                self._models = {m.name: self._models.get(m.name) or _Model(m, self._config_dir) for m in models}
                for model_config in models:
                    self._models[model_config.name].configure(model_config, self._config_dir)
            started = self._poll_models()
        self._wait(started, deadline)
        if not initial:
            self._check_available(added, started, timeout)
        labels = {m.name: dict(m.version_labels) for m in models}
        self._check_labels(labels, initial)
        with self._lock:
            self._labels = labels

    def _check_available(self, added, started, timeout):
        """UNKNOWN, in TF Serving's words, unless the latest version each added model started loading is available.
        A model with no version yet is not waited for: its versions may come later."""
        failures = []
        with self._lock:
            for name in sorted(added):
                if not started[name]:
                    continue
                version, state = max(started[name], key=lambda load: load[0])
                if state.state == AVAILABLE:
                    continue
                if state.state == END:
                    error = f"{state.error_code}: {state.error_message}" if state.error_code != "OK" else None
                elif self._stop.is_set():
                    error = "CANCELLED: the server stopped while it loaded"
                else:
                    error = f"DEADLINE_EXCEEDED: still loading when the reload's timeout of {timeout:g} s passed"
                due_to = f" due to error: {error}" if error else ""
                failures.append(f"{{{{name: {name} version: {version}}}{due_to}}}, ")
        if failures:
            raise ServingError("UNKNOWN", f"{len(failures)} model(s) did not become available: {{{''.join(failures)}}}")

    def _check_labels(self, labels, initial):
        for name, mapping in labels.items():
            for label, version in mapping.items():
                is_new = label not in self._labels.get(name, {})
                if self.allow_labels_for_unavailable and is_new:
                    continue
                state = self._models[name].versions.get(version)
                if state is None or state.state != AVAILABLE:
                    raise ServingError(
                        "FAILED_PRECONDITION",
                        f"Request to assign label to version {version} of model {name}, which is not currently "
                        "available for inference",
                    )

    def reload(self, config, timeout=None):
        """Replaces the whole config (models missing from it are unloaded), as HandleReloadConfigRequest does.

        Waits, at most `timeout` seconds (None: no limit), for the loads the new config starts, retries included;
        then, as TF Serving's ServerCore::ReloadConfig, raises UNKNOWN "<N> model(s) did not become available: ..."
        when a model the config adds did not become available. The new config is in effect all the same.
        """
        self._apply_config(config, initial=False, timeout=timeout)

    def model_names(self):
        with self._lock:
            return sorted(self._models)

    def unavailable_models(self):
        """{name: why} of the configured models that serve no version now; why is "base path missing", "no versions
        yet" (the base path is there, with no numbered version directory), "loading" or "failed to load"."""
        with self._lock:
            result = {}
            for name, model in sorted(self._models.items()):
                states = model.versions.values()
                if any(state.servable is not None for state in states):
                    continue
                if model.absent:
                    result[name] = model.absent
                elif not states:  # versions on disk, but none its version policy asks for
                    result[name] = "no versions yet"
                elif any(state.state in (START, LOADING) for state in states):
                    result[name] = "loading"
                else:
                    result[name] = "failed to load"
            return result

    def has_model(self, name):
        """Whether the config has a model called `name` (for every request: no lock, one dict lookup)."""
        return name in self._models

    # Polling and transitions.

    def start(self):
        """Starts polling in the background (the constructor already did the first poll)."""
        if self.poll_seconds > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll_loop, name="model-manager-poll", daemon=True)
            self._thread.start()

    def stop(self, timeout=10.0):
        """Stops polling, cancels the pending load retries, and waits up to `timeout` seconds for loads under way."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        self._loads.stop(max(0.0, deadline - time.monotonic()))

    def _poll_loop(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll(wait=False)
            except Exception:  # noqa: BLE001 (a poll must never kill the loop; the next one retries)
                log.exception("polling the model base paths failed")

    def poll(self, wait=True):
        """Reads every base path once and applies the version policies.

        With `wait` (an explicit poll), returns once the loads this poll started have ended, available or in END,
        retries included; without (the background loop), at once, the loads going on in the pool.
        """
        with self._poll_lock:
            started = self._poll_models()
        if wait:
            self._wait(started, deadline=None)

    def _poll_models(self):
        """Polls every model (under the poll lock); returns {model name: [(version, VersionState)]} of the loads
        started."""
        with self._lock:
            models = list(self._models.values())
        return {model.config.name: self._poll_model(model) for model in models}

    def _poll_model(self, model):
        on_disk = model.on_disk()
        absent = None if on_disk else "no versions yet" if os.path.isdir(model.base_path) else "base path missing"
        if absent != model.absent:  # told once each time it changes
            model.absent = absent
            if absent == "base path missing":
                log.warning("Could not find base path %s for servable %s: no such directory. Export a version there "
                            "(or correct the model's base_path); it is served once it appears.", model.base_path,
                            model.config.name)
            elif absent == "no versions yet":
                log.warning("No versions of servable %s found under base path %s. Did you forget to name your leaf "
                            "directory as a number (eg. '/1/')?", model.config.name, model.base_path)
        aspired = model.aspired(on_disk)
        started = []
        with self._lock:
            model.aspired_versions = aspired
            for version, state in model.versions.items():
                if version not in aspired:
                    state.failed = False  # forgotten: aspired again, it loads again
            for version in sorted(aspired, reverse=True):
                state = model.versions.get(version)
                if state is None or (state.state == END and not state.failed):
                    state = model.versions[version] = VersionState(on_disk[version])
                    started.append((version, state))
            self._unload_stale(model)
        for version, state in started:
            self._loads.submit(functools.partial(self._attempt, model, version, state))
        return started

    def _is_aspired(self, model, version):
        return self._models.get(model.config.name) is model and version in model.aspired_versions

    def _attempt(self, model, version, state, attempt=0, last_error=("OK", "")):
        """One attempt to load a version, on a thread of the pool. A failed one queues the next attempt
        `load_retry_seconds` later, or ends the version in END with its error. A version no longer aspired when its
        attempt comes (or whose model left the config) is not loaded: it ends with the last attempt's error."""
        name = model.config.name
        with self._lock:
            if not self._is_aspired(model, version):
                log.info("model %s version %d is no longer aspired: it is not loaded", name, version)
                self._end(state, last_error, failed=False)
                return
            state.state = LOADING
        try:
            servable = Servable(name, version, state.path)
            if self.warmup is not None:
                self.warmup(servable)
        except Exception as error:  # noqa: BLE001 (any failure to load ends the version, never the server)
            retry = attempt < self.max_load_retries and not self._stop.is_set()
            log.warning("model %s version %d: load attempt %d of %d failed%s: %s", name, version, attempt + 1,
                        self.max_load_retries + 1, f" (retrying in {self.load_retry_seconds:g} s)" if retry else "",
                        _log_text(error))
            status = client_load_error(error, name, model.base_path)
            with self._lock:
                if retry:
                    self._loads.submit(functools.partial(self._attempt, model, version, state, attempt + 1, status),
                                       delay=self.load_retry_seconds)
                else:
                    self._end(state, status, failed=self._is_aspired(model, version))
            return
        with self._lock:
            if self._models.get(name) is not model:  # the model left the config while the version loaded
                self._end(state, ("OK", ""), failed=False)
                return
            state.servable, state.state = servable, AVAILABLE
            self._unload_stale(model)  # at once, not at the next poll
            self._changed.notify_all()
        log.info("model %s version %d is available", name, version)

    def _end(self, state, status, failed):
        """Ends a load in END with `status` (code, message) (under the lock)."""
        state.state, (state.error_code, state.error_message), state.failed = END, status, failed
        self._changed.notify_all()

    def _wait(self, started, deadline):
        """Blocks until none of the loads `started` ({name: [(version, VersionState)]}) is under way any more, the
        manager stops, or `deadline` (a time.monotonic() time; None: none) passes."""
        states = [state for loads in started.values() for _, state in loads]
        with self._changed:
            while not self._stop.is_set() and any(state.state in (START, LOADING) for state in states):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                self._changed.wait(remaining)

    def _unload_stale(self, model):
        """Unloads the versions no longer aspired, the smallest first, while another version is loaded (under the
        lock)."""
        while True:
            loaded = sorted(v for v, s in model.versions.items() if s.state == AVAILABLE)
            stale = [v for v in loaded if v not in model.aspired_versions]
            if not stale or len(loaded) <= 1:
                return
            self._unload(model, stale[0])

    def _unload(self, model, version):
        with self._lock:
            state = model.versions[version]
            state.state = UNLOADING
            state.servable = None  # requests in flight keep their own reference until they finish
            state.state = END
        log.info("model %s version %d unloaded", model.config.name, version)

    def _unload_all(self, model):
        for version, state in list(model.versions.items()):
            if state.state == AVAILABLE:
                self._unload(model, version)

    # Requests.

    def servable(self, name, version=None, label=None):
        """The Servable a request names; NOT_FOUND / INVALID_ARGUMENT exactly as TF Serving words them."""
        with self._lock:
            model = self._models.get(name)
            if label is not None:
                labels = self._labels.get(name, {})
                if model is None:
                    raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
                if label not in labels:
                    raise ServingError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
                version = labels[label]
            if version is not None:
                state = model.versions.get(version) if model else None
                if state is None or state.servable is None:
                    raise ServingError("NOT_FOUND", f"Servable not found for request: Specific({name}, {version})")
                return state.servable
            available = [v for v, s in model.versions.items() if s.servable is not None] if model else []
            if not available:
                raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
            return model.versions[max(available)].servable

    def status(self, name, version=None):
        """[(version, state, error code, error message)], highest version first."""
        with self._lock:
            model = self._models.get(name)
            if model is None or not model.versions:
                raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
            if version is not None:
                if version not in model.versions:
                    raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
                versions = [version]
            else:
                versions = sorted(model.versions, reverse=True)
            return [
                (v, model.versions[v].state, model.versions[v].error_code, model.versions[v].error_message)
                for v in versions
            ]

    def wait_until_available(self, name, version=None, timeout=60.0):
        """Blocks until the model (or version) serves; for tests and start-up. Returns the servable."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.servable(name, version)
            except ServingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
