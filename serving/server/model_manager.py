"""ModelManager: which versions of which models are loaded, as TensorFlow Serving decides it.

Each model of the config has a base path whose numeric subdirectories are its versions. A poll (every
`poll_seconds`) reads the directory, picks the aspired versions by the model's version policy (latest N, all, or
specific), and moves towards them with TF Serving's availability-preserving policy: a new version is loaded while
the old one keeps serving, and a version that is no longer aspired is unloaded only if another version is loaded.
A load that fails (after `max_load_retries` retries) ends in END with its error, and whatever was serving keeps
serving. Versions keep their END entries in the status list, as TF Serving's do.
"""

import logging
import os
import threading
import time

from serving.server.errors import ServingError
from serving.server.servable import Servable

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"

log = logging.getLogger("serving.server")


class VersionState:
    def __init__(self, path):
        self.path = path
        self.state = START
        self.error_code = "OK"
        self.error_message = ""
        self.servable = None


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
        self.config = config
        self.base_path = resolve_base_path(config.base_path, config_dir)
        self.versions = {}
        self.warned_empty = False

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


class ModelManager:
    """Loads, serves and unloads model versions per a ModelServerConfig.

    Args:
        config: a `tensorflow.serving.ModelServerConfig`.
        config_dir: directory against which relative base paths resolve (the config file's); None: absolute only.
        poll_seconds: file-system poll interval; 0 polls once, at start.
        max_load_retries, load_retry_seconds: retries of a failing load before it ends in END.
        warmup: a callable `warmup(servable)` run after a version loads and before it serves (raises to fail it).
    """

    def __init__(self, config, config_dir=None, poll_seconds=1.0, max_load_retries=5, load_retry_seconds=60.0,
                 warmup=None, allow_labels_for_unavailable=False):
        self._lock = threading.RLock()
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
        self._apply_config(config, initial=True)

    # Configuration.

    def _apply_config(self, config, initial):
        models = validate_config(config, self._config_dir)
        with self._lock:
            kept = {m.name: self._models[m.name] for m in models if m.name in self._models}
            removed = [model for name, model in self._models.items() if name not in kept]
            self._models = {m.name: kept.get(m.name) or _Model(m, self._config_dir) for m in models}
            for model_config in models:
                self._models[model_config.name].config = model_config
        for model in removed:
            self._unload_all(model)
        self.poll()
        labels = {m.name: dict(m.version_labels) for m in models}
        self._check_labels(labels, initial)
        with self._lock:
            self._labels = labels

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

    def reload(self, config):
        """Replaces the whole config (models missing from it are unloaded), as HandleReloadConfigRequest does."""
        self._apply_config(config, initial=False)

    def model_names(self):
        with self._lock:
            return sorted(self._models)

    # Polling and transitions.

    def start(self):
        """Starts polling in the background (the constructor already did the first poll)."""
        if self.poll_seconds > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll_loop, name="model-manager-poll", daemon=True)
            self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poll_loop(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 (a poll must never kill the loop; the next one retries)
                log.exception("polling the model base paths failed")

    def poll(self):
        """Reads every base path once and applies the version policies."""
        with self._poll_lock:
            with self._lock:
                models = list(self._models.values())
            for model in models:
                self._poll_model(model)

    def _poll_model(self, model):
        on_disk = model.on_disk()
        if not on_disk and not model.warned_empty:
            log.warning("No versions of servable %s found under base path %s. Did you forget to name your leaf "
                        "directory as a number (eg. '/1/')?", model.config.name, model.base_path)
            model.warned_empty = True
        aspired = model.aspired(on_disk)
        for version in sorted(aspired, reverse=True):
            if version not in model.versions:
                self._load(model, version, on_disk[version])
        while True:
            with self._lock:
                loaded = sorted(v for v, s in model.versions.items() if s.state == AVAILABLE)
                stale = [v for v in loaded if v not in aspired]
            if not stale or len(loaded) <= 1:
                break
            self._unload(model, stale[0])

    def _load(self, model, version, path):
        state = VersionState(path)
        with self._lock:
            model.versions[version] = state
        state.state = LOADING
        for attempt in range(self.max_load_retries + 1):
            try:
                servable = Servable(model.config.name, version, path)
                if self.warmup is not None:
                    self.warmup(servable)
            except Exception as error:  # noqa: BLE001 (any failure to load ends the version, never the server)
                code = error.code if isinstance(error, ServingError) else "UNKNOWN"
                message = error.message if isinstance(error, ServingError) else f"{type(error).__name__}: {error}"
                log.warning("model %s version %d: load attempt %d failed: %s", model.config.name, version,
                            attempt + 1, message)
                if attempt < self.max_load_retries and not self._stop.wait(self.load_retry_seconds):
                    continue
                with self._lock:
                    state.state, state.error_code, state.error_message = END, code, message
                return
            with self._lock:
                state.servable, state.state = servable, AVAILABLE
            log.info("model %s version %d is available", model.config.name, version)
            return

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
