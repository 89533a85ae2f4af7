"""The one exception type every command turns into "oci-reference: <problem>"."""


class RuntimeFailure(Exception):
    """An operation failed; the message is one line meant for the user."""


class ConfigError(RuntimeFailure):
    """config.json holds a value the runtime cannot accept; names its JSON path."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"config.json: {path}: {problem}")
        self.path = path


class HookFailure(RuntimeFailure):
    """A prestart/createRuntime/createContainer/startContainer/poststart hook failed: the lifecycle
    goes on at step 12 (destroy) and 13 (poststop hooks), runtime.md "Lifecycle"."""
