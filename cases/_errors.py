"""The one way a case expects a runtime to refuse a config (runtime.md "Errors").

``expect_error``: create or start must refuse it. ``expect_create_error``: create must refuse it.
``refused_at_create``: create may refuse it (the spec allows either); the case goes on when it
does not. Each checks that a refused create leaves no container behind ("generating an error"
leaves the environment as it was, runtime.md#errors). And the other way round,
``expect_no_error``: create and start must both succeed (what the config holds must be ignored,
or only warned about).
"""

import pytest

from harness.runtime import RuntimeCallError


def left_no_container(c):
    """After ``c``'s create failed: the runtime's ``state`` must not know the container.

    ``Container.create`` asks ``state`` once a create fails (its cleanup needs the answer), and
    ``c.created`` is that answer: True when ``state`` still described the container. Asking
    again would only repeat the same runtime call.
    """
    return not c.created


def refused_at_create(c):
    """Create ``c``: True when the runtime refuses, once it is checked that the refusal left no
    container behind; False when the container was created."""
    try:
        c.create()
    except RuntimeCallError:
        if not left_no_container(c):
            pytest.fail(f"container {c.id} exists after its create failed")
        return True
    return False


def expect_create_error(c, why):
    """create must fail, and leave no container behind; ``why`` says why it cannot succeed."""
    with pytest.raises(RuntimeCallError):
        c.create()
        pytest.fail(f"create succeeded although {why}")
    if not left_no_container(c):
        pytest.fail(f"a container exists after the failed create ({why})")


def expect_no_error(c, what):
    """create and start must both succeed; ``what`` says why an error would be wrong (the
    runtime's error is appended)."""
    try:
        c.create()
        c.start()
    except RuntimeCallError as err:
        pytest.fail(f"{what}: {err}")


def expect_error(c, what):
    """create, or else start, must fail; a failed create leaves no container behind.

    The spec does not say at which operation an invalid value must be refused, so either will
    do; a container whose create and start both succeed is the failure, named by ``what``.
    """
    if refused_at_create(c):
        return
    try:
        c.start()
    except RuntimeCallError:
        return
    end = c.wait()
    pytest.fail(
        f"{what}: create and start both succeeded (the process ended with {end}, printing {c.stdout()!r}); expected an error"
    )
